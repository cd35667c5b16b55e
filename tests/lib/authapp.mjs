// A Laravel-style /broadcasting/auth endpoint backed by Laravel's real RedisBroadcaster
// (tests/php/auth_app.php), served by PHP's built-in web server.
//
//   const app = await startAuthApp();
//   app.url          // 'http://127.0.0.1:PORT'  (POST /broadcasting/auth, /broadcasting/user-auth)
//   app.requests()   // every request it received, parsed from its JSON-lines log
//   app.output()     // the php -S stdout/stderr so far (for failure messages)
//   await app.stop();
//
// Users: 1 "Ada", 2 "Bob"; log in with cookie `laravel_session=<id>` or
// `Authorization: Bearer user-<id>`. See tests/php/auth_app.php for the channels.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = path.join('tests', 'php', 'auth_app.php');

const live = new Set();
const tmpDirs = new Set();
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) {
      try { child.kill('SIGKILL'); } catch { /* gone */ }
    }
    for (const dir of tmpDirs) {
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
    }
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function probe(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/__ready', timeout: 500 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 200));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

async function launch({ readyTimeout }) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-authapp-'));
  const logFile = path.join(dir, 'requests.jsonl');
  fs.writeFileSync(logFile, '');
  tmpDirs.add(dir);

  const env = { ...process.env, AUTH_APP_LOG: logFile };
  delete env.PHP_CLI_SERVER_WORKERS; // one worker: requests are handled (and logged) in order
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, SCRIPT], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  hookExit();

  let out = '';
  const keep = (chunk) => { out = (out + chunk).slice(-20000); };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  // Don't keep the test process alive: a forgotten app is killed by the exit hook instead.
  child.unref();
  child.stdout.unref();
  child.stderr.unref();
  let exited = child.exitCode !== null;
  const exitPromise = new Promise((resolve) => child.once('exit', () => {
    exited = true;
    live.delete(child);
    resolve();
  }));
  child.once('error', (err) => { keep(`\nspawn error: ${err.message}\n`); });

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
      await exitPromise;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    tmpDirs.delete(dir);
  };

  const deadline = Date.now() + readyTimeout;
  for (;;) {
    if (exited) {
      await stop();
      return { error: new Error(`php -S exited before answering:\n${out}`), retryable: /Failed to listen|Address already in use/i.test(out) };
    }
    if (await probe(port)) break;
    if (Date.now() > deadline) {
      await stop();
      return { error: new Error(`auth app did not answer on port ${port} within ${readyTimeout} ms:\n${out}`), retryable: false };
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    app: {
      port,
      url: `http://127.0.0.1:${port}`,
      logFile,
      requests() {
        let text = '';
        try { text = fs.readFileSync(logFile, 'utf8'); } catch { return []; }
        return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
      },
      clearRequests() {
        try { fs.writeFileSync(logFile, ''); } catch { /* stopped */ }
      },
      output: () => out,
      stop,
    },
  };
}

/** Starts tests/php/auth_app.php under `php -S` on a free port; resolves once it answers. */
export async function startAuthApp({ readyTimeout = 10000 } = {}) {
  let last;
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await launch({ readyTimeout });
    if (r.app) return r.app;
    last = r.error;
    if (!r.retryable) break;
  }
  throw last;
}
