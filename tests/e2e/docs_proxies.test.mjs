// The reverse-proxy blocks in docs/operations.md, run for real: nginx and Caddy, each taken from the page
// as written (only the upstream ports, the listen address and the TLS parts adapted to the test), loaded in
// front of two nodes, and used by pusher-js (the WebSocket upgrade), the official Pusher SDK (the HTTP API),
// a POST to the auth endpoint and the debug dashboard's login, all through the proxy.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import {
  e2e, startRedis, startHerald, freePort, waitFor, spawnTracked, stopChild, makeEcho, echoConnected, recorder,
  echoSubscribed, pusherServer, docsBlock, APP_KEY, Echo, REPO_ROOT,
} from '../lib/harness.mjs';
import { createRequire } from 'node:module';

const ioClient = createRequire(path.join(REPO_ROOT, 'tests', 'package.json'))('socket.io-client');

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';
const TOKEN = 'proxy-test-dashboard-token';

/** The first ```lang block of a docs page, as written (its list indentation taken off). */
function block(page, lang) {
  return docsBlock(page, new RegExp('```' + lang + '\\n([\\s\\S]*?)```')).split('\n').map((l) => l.replace(/^ {2}/, '')).join('\n');
}

function request(port, method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers },
      (res) => { let text = ''; res.on('data', (c) => { text += c; }); res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text })); });
    req.on('error', reject);
    req.end(body);
  });
}

/** Two nodes on one Redis and a proxy in front of them, started by `startProxy(dir, nodePorts, port)`. */
function behind(name, startProxy) {
  describe(`docs/operations.md: the ${name} block`, { skip }, () => {
    let redis; const nodes = []; let proxy; let port; let dir;
    before(async () => {
      redis = await startRedis();
      const env = { HERALD_DASHBOARD_TOKEN: TOKEN };
      nodes.push(await startHerald({ redisUrl: redis.url, env }), await startHerald({ redisUrl: redis.url, env }));
      port = await freePort();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `herald-${name}-`));
      proxy = await startProxy(dir, nodes.map((n) => n.port), port);
      await waitFor(async () => {
        if (proxy.child.exitCode !== null) throw new Error(`${name} exited: ${proxy.logs()}`);
        return (await request(port, 'GET', '/apps/app-id/channels').catch(() => ({ status: 0 }))).status === 401;
      }, { timeout: 15000, what: `${name} on ${port}` });
    });
    after(async () => {
      if (proxy) await stopChild(proxy.child);
      for (const n of nodes) await n.stop();
      await redis?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    e2e('pusher-js connects through it; the HTTP API, the auth endpoint and the dashboard answer through it', async () => {
      const echo = makeEcho({ port });
      await echoConnected(echo);
      const rec = recorder();
      await echoSubscribed(echo.channel('docs').listen('.said', rec.fn));
      await pusherServer(port).trigger('docs', 'said', { via: name });
      assert.deepEqual(await rec.next(1), { via: name });
      const auth = await request(port, 'POST', `/herald/auth/${APP_KEY}`, 'socket_id=1.2&channel_name=private-x',
        { 'content-type': 'application/x-www-form-urlencoded' });
      // Herald answers (no auth_url is configured for this app), not the proxy.
      assert.equal(auth.status, 404);
      assert.match(auth.body, /no auth URL configured for Herald's auth endpoint: set auth_url \(HERALD_AUTH_URL\)/);
      // A browser's login through the proxy: its Origin is the proxy's address, which Herald must accept.
      const login = await request(port, 'POST', '/herald/dashboard/login', `token=${TOKEN}`, {
        'content-type': 'application/x-www-form-urlencoded', origin: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`,
      });
      assert.equal(login.status, 303, login.body);
      const cookie = login.headers['set-cookie'][0].split(';')[0];
      const apps = await request(port, 'GET', '/herald/dashboard/api/apps', undefined, { cookie });
      assert.equal(JSON.parse(apps.body).apps[0].id, 'app-id');
      echo.disconnect();
    });

    e2e('Echo on socket.io (WebSocket, as the page advises for several nodes) receives through it', async () => {
      const echo = new Echo({
        broadcaster: 'socket.io',
        client: ioClient,
        host: `http://127.0.0.1:${port}`,
        transports: ['websocket'],
        reconnection: false,
      });
      try {
        const rec = recorder();
        echo.channel('docs-sio').listen('.said', rec.fn);
        const socket = echo.connector.socket;
        await waitFor(() => socket.connected, { what: `socket.io through ${name}` });
        await waitFor(new Promise((resolve) => socket.emit('herald:settled', {}, resolve)), { what: 'the subscribe handled' });
        await pusherServer(port).trigger('docs-sio', 'said', { via: name });
        assert.deepEqual(await rec.next(1), { via: name });
      } finally {
        echo.disconnect();
      }
    });
  });
}

function spawnLogged(command, args, options = {}) {
  let logs = '';
  const child = spawnTracked(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  return { child, logs: () => logs };
}

behind('nginx', (dir, upstreams, port) => {
  const conf = block('operations.md', 'nginx')
    .replace(/server 127\.0\.0\.1:6001; server 127\.0\.0\.1:6002;/, upstreams.map((p) => `server 127.0.0.1:${p};`).join(' '))
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port};`)
    // The test speaks plain http on a port of its own: pass the port on, as the page says for such a proxy.
    .replaceAll('proxy_set_header Host $host;', 'proxy_set_header Host $http_host;')
    .replaceAll('proxy_set_header X-Forwarded-Host $host;', 'proxy_set_header X-Forwarded-Host $http_host;');
  assert.match(conf, new RegExp(`server 127\\.0\\.0\\.1:${upstreams[0]};`), 'the upstream line was found and adapted');
  fs.writeFileSync(path.join(dir, 'nginx.conf'), [
    'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, 'error_log stderr warn;',
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
    conf,
    '}', '',
  ].join('\n'));
  return spawnLogged('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
});

behind('Caddy', (dir, upstreams, port) => {
  const conf = block('operations.md', 'caddyfile')
    .replace('ws.example.com {', `http://127.0.0.1:${port} {`)
    .replace('127.0.0.1:6001 127.0.0.1:6002', upstreams.map((p) => `127.0.0.1:${p}`).join(' '));
  assert.match(conf, new RegExp(`127\\.0\\.0\\.1:${upstreams[1]}`), 'the upstreams were found and adapted');
  // No admin endpoint and no certificates in a test; everything else as written.
  fs.writeFileSync(path.join(dir, 'Caddyfile'), `{\n\tadmin off\n\tauto_https off\n}\n${conf}`);
  return spawnLogged('/usr/bin/caddy', ['run', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], {
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
  });
});
