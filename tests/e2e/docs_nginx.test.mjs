// The nginx block in docs/operations.md, run for real: taken from the page as written (only the upstream
// ports, the listen line and the TLS comment adapted to the test), loaded by nginx in front of two nodes,
// and used by pusher-js (the WebSocket upgrade), the official Pusher SDK (the HTTP API) and a POST to the
// auth endpoint, all through it.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import {
  e2e, startRedis, startHerald, freePort, waitFor, spawnTracked, stopChild, makeEcho, echoConnected, recorder,
  echoSubscribed, pusherServer, docsBlock, APP_KEY,
} from '../lib/harness.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

/** The first ```nginx block of a docs page, as written (its list indentation taken off). */
function nginxBlock(page) {
  return docsBlock(page, /```nginx\n([\s\S]*?)```/).split('\n').map((l) => l.replace(/^ {2}/, '')).join('\n');
}

describe('docs/operations.md: the nginx block', { skip }, () => {
  let redis; const nodes = []; let nginx; let port; let dir; let logs = '';
  before(async () => {
    redis = await startRedis();
    nodes.push(await startHerald({ redisUrl: redis.url }), await startHerald({ redisUrl: redis.url }));
    port = await freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-nginx-'));
    const block = nginxBlock('operations.md')
      .replace(/server 127\.0\.0\.1:6001; server 127\.0\.0\.1:6002;/, nodes.map((n) => `server 127.0.0.1:${n.port};`).join(' '))
      .replace('listen 443 ssl;', `listen 127.0.0.1:${port};`);
    assert.match(block, new RegExp(`server 127\\.0\\.0\\.1:${nodes[0].port};`), 'the upstream line was found and adapted');
    fs.writeFileSync(path.join(dir, 'nginx.conf'), [
      'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, 'error_log stderr warn;',
      'events { worker_connections 256; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
      block,
      '}', '',
    ].join('\n'));
    nginx = spawnTracked('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx.stderr.on('data', (d) => { logs += d; });
    await waitFor(() => new Promise((resolve) => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${logs}`);
      http.get({ host: '127.0.0.1', port, path: '/apps/app-id/channels' }, (res) => { res.resume(); resolve(true); })
        .on('error', () => resolve(false));
    }), { timeout: 10000, what: `nginx on ${port}` });
  });
  after(async () => {
    if (nginx) await stopChild(nginx);
    for (const n of nodes) await n.stop();
    await redis?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  e2e('pusher-js connects through it, the HTTP API and the auth endpoint answer through it', async () => {
    const echo = makeEcho({ port });
    await echoConnected(echo);
    const rec = recorder();
    await echoSubscribed(echo.channel('docs').listen('.said', rec.fn));
    await pusherServer(port).trigger('docs', 'said', { via: 'nginx' });
    assert.deepEqual(await rec.next(1), { via: 'nginx' });
    const auth = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/herald/auth/${APP_KEY}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        (res) => { let body = ''; res.on('data', (c) => { body += c; }); res.on('end', () => resolve({ status: res.statusCode, body })); });
      req.on('error', reject);
      req.end('socket_id=1.2&channel_name=private-x');
    });
    // Herald answers (no auth_url is configured for this app), not nginx.
    assert.equal(auth.status, 404);
    assert.match(auth.body, /no auth URL configured for Herald's auth endpoint: set auth_url \(HERALD_AUTH_URL\)/);
    echo.disconnect();
  });
});
