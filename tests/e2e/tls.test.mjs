// TLS at both edges, with a test CA made by openssl: Redis over TLS with an ACL user (rediss://), the node's own
// listener serving wss:// and https:// (certificate replaced on disk without a restart), and https to the app
// (webhooks, the auth endpoint). Real redis-server (Debian's build has TLS), real pusher-js in a process that
// trusts the test CA.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import crypto from 'node:crypto';
import https from 'node:https';
import path from 'node:path';
import { execFile } from 'node:child_process';
import {
  e2e, freePort, startHerald, waitFor, rawClient, closeClients, signPresence, presenceData, dataOf, pusherServer, makeEcho,
  spawnTracked, stopChild, REPO_ROOT, APP_KEY,
} from '../lib/harness.mjs';
import { makePki, issueServerCert, servedFingerprint, fileFingerprint } from '../lib/tls.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';

const PASSWORD = 'herald-pw';

function redisCli(pki, port, args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['--tls', '--cacert', pki.ca.cert, '--cert', pki.client.cert, '--key', pki.client.key,
      '-h', '127.0.0.1', '-p', String(port),
      '--user', 'herald', '--pass', PASSWORD, '--no-auth-warning', ...args], { timeout: 5000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
  });
}

async function startTlsRedis(pki, { clientAuth = false } = {}) {
  const port = await freePort();
  const child = spawnTracked('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--tls-cert-file', pki.server.cert, '--tls-key-file', pki.server.key, '--tls-ca-cert-file', pki.ca.cert,
    '--tls-auth-clients', clientAuth ? 'yes' : 'no',
    '--user', 'default', 'off',
    '--user', 'herald', 'on', `>${PASSWORD}`, '~*', '&*', '+@all',
  ], { stdio: 'ignore' });
  await waitFor(async () => (await redisCli(pki, port, ['ping']).catch(() => '')) === 'PONG',
    { timeout: 10000, what: 'redis-server over TLS' });
  return { port, stop: () => stopChild(child) };
}

/** Status of GET /readyz over https on `port`, trusting `ca`. */
function httpsStatus(port, ca, urlPath = '/readyz') {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: urlPath, ca: fs.readFileSync(ca), servername: 'localhost', agent: false, timeout: 2000 },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

describe('TLS', () => {
  let pki;
  before(() => {
    pki = makePki();
    pki.client = issueServerCert(pki, 'client');
  });
  after(async () => { await closeClients(); pki?.remove(); });

  describe('Redis over TLS with an ACL user (rediss://)', () => {
    let redis;
    before(async () => { redis = await startTlsRedis(pki); });
    after(async () => { await redis?.stop(); });

    e2e('two nodes on rediss:// share presence, and a Laravel broadcast reaches both', async () => {
      const url = `rediss://herald:${PASSWORD}@127.0.0.1:${redis.port}/0`;
      const env = { HERALD_REDIS_CA_FILE: pki.ca.cert };
      const [a, b] = await Promise.all([startHerald({ redisUrl: url, env }), startHerald({ redisUrl: url, env })]);
      try {
        const c1 = await rawClient(a.port);
        const d1 = presenceData('1', 'Ann');
        c1.subscribe('presence-room', { auth: signPresence(c1.socketId, 'presence-room', d1), channel_data: d1 });
        await c1.next((f) => f.event === 'pusher_internal:subscription_succeeded');
        const c2 = await rawClient(b.port);
        const d2 = presenceData('2', 'Bob');
        c2.subscribe('presence-room', { auth: signPresence(c2.socketId, 'presence-room', d2), channel_data: d2 });
        const here = await c2.next((f) => f.event === 'pusher_internal:subscription_succeeded');
        assert.deepEqual(dataOf(here).presence.ids.sort(), ['1', '2']);
        const added = await c1.next((f) => f.event === 'pusher_internal:member_added');
        assert.equal(dataOf(added).user_id, '2');

        await c1.subscribeOk('news');
        await c2.subscribeOk('news');
        // And what a browser runs: laravel-echo on pusher-js, on the other node.
        const echo = makeEcho({ port: b.port });
        const shipped = [];
        await new Promise((resolve) => {
          echo.channel('news').listen('OrderShipped', (e) => shipped.push(e)).subscribed(resolve);
        });
        // Laravel's own RedisBroadcaster, over TLS as the ACL user (phpredis, as config/database.php sets it).
        await laravelBroadcast(redis.port, {
          channels: [{ type: 'public', name: 'news' }],
          data: { id: 7 },
          redis: { scheme: 'tls', password: ['herald', PASSWORD], context: { stream: { cafile: pki.ca.cert, peer_name: 'localhost' } } },
        });
        for (const c of [c1, c2]) {
          const got = await c.next((f) => f.event === 'App\\Events\\OrderShipped');
          assert.equal(dataOf(got).id, 7);
        }
        await waitFor(() => shipped.length === 1, { timeout: 5000, what: 'Echo to hear OrderShipped' });
        assert.equal(shipped[0].id, 7);
      } finally {
        await a.stop();
        await b.stop();
      }
    });

    e2e('a wrong CA or a wrong password: unready, a clear log line, no panic', async () => {
      const wrongCa = await startHerald({
        redisUrl: `rediss://herald:${PASSWORD}@127.0.0.1:${redis.port}/0`,
        env: { HERALD_REDIS_CA_FILE: pki.otherCa.cert },
        waitReady: false,
      });
      const wrongPassword = await startHerald({
        redisUrl: `rediss://herald:nope@127.0.0.1:${redis.port}/0`,
        env: { HERALD_REDIS_CA_FILE: pki.ca.cert },
        waitReady: false,
      });
      try {
        await waitFor(() => /certificate/i.test(wrongCa.logs()) && wrongCa.logs().includes(`127.0.0.1:${redis.port}`),
          { timeout: 10000, what: 'a log line naming the certificate problem and the Redis address' });
        await waitFor(() => /Password authentication failed/i.test(wrongPassword.logs()) && wrongPassword.logs().includes(`127.0.0.1:${redis.port}`),
          { timeout: 10000, what: 'a log line naming the wrong password' });
        for (const h of [wrongCa, wrongPassword]) {
          assert.ok(h.alive(), 'the node is still running');
          assert.equal((await fetch(h.url('/readyz'))).status, 503);
          assert.doesNotMatch(h.logs(), /panicked/);
        }
      } finally {
        await wrongCa.stop();
        await wrongPassword.stop();
      }
    });
  });

  describe('Redis that requires client certificates (mutual TLS)', () => {
    let redis;
    before(async () => { redis = await startTlsRedis(pki, { clientAuth: true }); });
    after(async () => { await redis?.stop(); });

    e2e('a node with HERALD_REDIS_CLIENT_CERT_FILE is served; one without is refused and says where', async () => {
      const url = `rediss://herald:${PASSWORD}@127.0.0.1:${redis.port}/0`;
      const withCert = await startHerald({
        redisUrl: url,
        env: {
          HERALD_REDIS_CA_FILE: pki.ca.cert,
          HERALD_REDIS_CLIENT_CERT_FILE: pki.client.cert,
          HERALD_REDIS_CLIENT_KEY_FILE: pki.client.key,
        },
      });
      const withoutCert = await startHerald({ redisUrl: url, env: { HERALD_REDIS_CA_FILE: pki.ca.cert }, waitReady: false });
      try {
        const c = await rawClient(withCert.port);
        await c.subscribeOk('news');
        await redisCli(pki, redis.port, ['PUBLISH', 'laravel_database_news', '{"event":"mtls","data":{"ok":true},"socket":null}']);
        await c.next((f) => f.event === 'mtls');
        await waitFor(() => withoutCert.logs().includes(`127.0.0.1:${redis.port}`), { timeout: 10000, what: 'a log line naming Redis' });
        assert.equal((await fetch(withoutCert.url('/readyz'))).status, 503);
      } finally {
        await withCert.stop();
        await withoutCert.stop();
      }
    });
  });

  describe('the listener serves wss:// and https://', () => {
    let herald;
    let certFile;
    let keyFile;
    before(async () => {
      // The node's certificate lives in files it watches; the test replaces them in place.
      certFile = path.join(pki.dir, 'listener.pem');
      keyFile = path.join(pki.dir, 'listener.key');
      fs.copyFileSync(pki.server.cert, certFile);
      fs.copyFileSync(pki.server.key, keyFile);
      const metrics = await freePort();
      herald = await startHerald({
        env: { HERALD_TLS_CERT_FILE: certFile, HERALD_TLS_KEY_FILE: keyFile, HERALD_METRICS_PORT: String(metrics) },
        waitReady: false,
      });
      herald.metricsPort = metrics;
      await waitFor(async () => (await fetch(`http://127.0.0.1:${metrics}/readyz`).catch(() => ({}))).status === 200,
        { timeout: 10000, what: '/readyz on the plaintext metrics port' });
    });
    after(async () => { await herald?.stop(); });

    e2e('pusher-js with forceTLS receives an event sent through the HTTPS API; the metrics port stays plaintext', async () => {
      const client = spawnTracked(process.execPath, [path.join(REPO_ROOT, 'tests', 'lib', 'tls_pusher_client.mjs'), String(herald.port), 'orders'], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.ca.cert }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines = [];
      client.stdout.on('data', (d) => lines.push(...String(d).trim().split('\n').map((l) => JSON.parse(l))));
      try {
        await waitFor(() => lines.some((l) => l.subscribed === 'orders'), { timeout: 10000, what: 'pusher-js subscribed over wss://' });
        const api = pusherServer(herald.port, { useTLS: true, agent: new https.Agent({ ca: fs.readFileSync(pki.ca.cert) }), host: 'localhost' });
        await api.trigger('orders', 'shipped', { id: 1 });
        await waitFor(() => lines.some((l) => l.event === 'shipped' && l.data?.id === 1), { timeout: 5000, what: 'the event over wss://' });
        const metrics = await fetch(`http://127.0.0.1:${herald.metricsPort}/metrics`);
        assert.equal(metrics.status, 200);
        assert.equal(await httpsStatus(herald.port, pki.ca.cert, '/'), 200, 'https:// on the main port');
        await assert.rejects(fetch(`http://127.0.0.1:${herald.port}/`), 'the main port speaks only TLS');
      } finally {
        await stopChild(client);
      }
    });

    e2e('headless Chromium loads a page over https that connects with wss:// and receives an event', async () => {
      const { chromium } = await import('playwright-core');
      // Chromium trusts exactly the test server's key (by its SPKI hash), the way a CA-signed cert would be.
      const spki = crypto.createHash('sha256')
        .update(new crypto.X509Certificate(fs.readFileSync(pki.server.cert)).publicKey.export({ type: 'spki', format: 'der' }))
        .digest('base64');
      const page = `<!doctype html><html><body><h1>Herald over wss://</h1><pre id="log"></pre>
<script src="/pusher.min.js"></script><script>
const log = (t) => { document.getElementById('log').textContent += t + ' | '; };
const pusher = new Pusher('${APP_KEY}', { wsHost: 'localhost', wssPort: ${herald.port}, forceTLS: true, enabledTransports: ['ws', 'wss'], cluster: 'mt1', disableStats: true });
pusher.connection.bind('state_change', (s) => log('state ' + s.current));
const ch = pusher.subscribe('browser');
ch.bind('pusher:subscription_succeeded', () => { log('subscribed'); window.subscribed = true; });
ch.bind('hello', (d) => { log('hello ' + JSON.stringify(d)); window.hello = d; });
</script></body></html>`;
      const site = https.createServer({ cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) }, (req, res) => {
        if (req.url === '/pusher.min.js') {
          res.writeHead(200, { 'content-type': 'text/javascript' });
          res.end(fs.readFileSync(path.join(REPO_ROOT, 'tests', 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js')));
        } else {
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(page);
        }
      });
      await new Promise((r) => site.listen(0, '127.0.0.1', r));
      const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`],
      });
      try {
        const tab = await browser.newPage();
        const consoleLines = [];
        tab.on('console', (m) => consoleLines.push(m.text()));
        tab.on('pageerror', (e) => consoleLines.push(`page error: ${e.message}`));
        tab.on('requestfailed', (r) => consoleLines.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
        await tab.goto(`https://localhost:${site.address().port}/`);
        await tab.waitForFunction(() => window.subscribed === true, null, { timeout: 15000 }).catch(async (e) => {
          e.message += `\npage log:\n${await tab.textContent('#log')}\nconsole:\n${consoleLines.join('\n')}`;
          throw e;
        });
        const api = pusherServer(herald.port, { useTLS: true, agent: new https.Agent({ ca: fs.readFileSync(pki.ca.cert) }), host: 'localhost' });
        await api.trigger('browser', 'hello', { from: 'the https API' });
        await tab.waitForFunction(() => window.hello?.from === 'the https API', null, { timeout: 10000 });
        const shots = path.join(REPO_ROOT, 'target', 'test-artifacts');
        fs.mkdirSync(shots, { recursive: true });
        await tab.screenshot({ path: path.join(shots, 'tls-wss-page.png') });
      } finally {
        await browser.close();
        site.close();
      }
    });

    e2e('a certificate replaced on disk is served to the next connection; a bad one keeps the old', async () => {
      const before = await servedFingerprint(herald.port, pki.ca.cert);
      assert.equal(before, fileFingerprint(pki.server.cert));
      const renewed = issueServerCert(pki, 'renewed');
      fs.copyFileSync(renewed.key, keyFile);
      fs.copyFileSync(renewed.cert, certFile);
      await waitFor(async () => (await servedFingerprint(herald.port, pki.ca.cert)) === fileFingerprint(renewed.cert),
        { timeout: 10000, what: 'the renewed certificate to be served' });
      fs.writeFileSync(certFile, 'not a certificate');
      await waitFor(() => /TLS certificate not reloaded/.test(herald.logs()), { timeout: 10000, what: 'a log line about the bad file' });
      assert.equal(await servedFingerprint(herald.port, pki.ca.cert), fileFingerprint(renewed.cert), 'still the last good one');
      fs.copyFileSync(renewed.cert, certFile);
    });
  });

  describe('https to the app', () => {
    let app;
    const received = [];
    before(async () => {
      const server = https.createServer({ cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) }, (req, res) => {
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', () => {
          received.push({ path: req.url, body });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(req.url === '/broadcasting/auth' ? 'true' : '{}');
        });
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      app = { server, port: server.address().port };
    });
    after(() => app?.server.close());

    e2e('webhooks and auth forwarding reach an https app that the CA file vouches for', async () => {
      const herald = await startHerald({
        env: {
          HERALD_APP_CA_FILE: pki.ca.cert,
          HERALD_WEBHOOK_URL: `https://localhost:${app.port}/hook`,
          HERALD_AUTH_URL: `https://localhost:${app.port}/broadcasting/auth`,
        },
      });
      try {
        const c = await rawClient(herald.port);
        await c.subscribeOk('news');
        await waitFor(() => received.some((r) => r.path === '/hook' && r.body.includes('channel_occupied')),
          { timeout: 10000, what: 'the channel_occupied webhook over https' });
        const res = await fetch(herald.url(`/herald/auth/${APP_KEY}`), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `socket_id=${c.socketId}&channel_name=private-orders`,
        });
        assert.equal(res.status, 200);
        assert.match((await res.json()).auth, /^app-key:[0-9a-f]{64}$/);
      } finally {
        await herald.stop();
      }
    });

    e2e('without the CA file the app is refused, with a log line naming the host and the certificate', async () => {
      const herald = await startHerald({
        env: { HERALD_AUTH_URL: `https://localhost:${app.port}/broadcasting/auth` },
      });
      try {
        const res = await fetch(herald.url(`/herald/auth/${APP_KEY}`), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'socket_id=1.1&channel_name=private-orders',
        });
        assert.equal(res.status, 502);
        await waitFor(() => /localhost:\d+.*(certificate|UnknownIssuer)/i.test(herald.logs().replace(/\n/g, ' ')),
          { timeout: 5000, what: 'a log line with the host and the certificate error' });
      } finally {
        await herald.stop();
      }
    });
  });
});
