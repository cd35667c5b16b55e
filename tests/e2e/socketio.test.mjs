// laravel-echo-server's clients on Herald: the real laravel-echo with `broadcaster: 'socket.io'` on
// socket.io-client 2.x (Engine.IO 3) and 4.x (Engine.IO 4), three nodes on one Redis, Laravel's real
// RedisBroadcaster publishing and its real RedisBroadcaster::auth (tests/php/auth_app.php) answering auth.
// pusher-js clients share the same channels and presence.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  e2e, closeClients, makeEcho, echoSubscribed, recorder, waitFor, expectNothing, httpGet,
  REPO_ROOT, Echo, APP_ID, launchChromium, startRedis, startHerald,
} from '../lib/harness.mjs';
import { startCluster } from '../lib/cluster.mjs';
import { startAuthApp } from '../lib/authapp.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';

const require = createRequire(path.join(REPO_ROOT, 'tests', 'package.json'));
const CLIENTS = { v2: require('socket.io-client-v2'), v4: require('socket.io-client') };
const runRedis = process.env.HERALD_TEST_MODE !== 'embedded';

describe('socket.io clients (Echo broadcaster socket.io)', { skip: !runRedis && 'HERALD_TEST_MODE=embedded' }, () => {
  let cluster;
  let authApp;
  const sockets = [];
  const port = (i) => cluster.nodes[i].port;
  const broadcast = (opts) => laravelBroadcast(cluster.redis.port, opts);

  /** An Echo on socket.io `version` against node `node`, logged in as `user` (cookie) or with `headers`. */
  async function sioEcho(version, node, { user, headers, transports } = {}) {
    const extraHeaders = user ? { Cookie: `laravel_session=${user}` } : {};
    const echo = new Echo({
      broadcaster: 'socket.io',
      client: CLIENTS[version],
      host: `http://127.0.0.1:${port(node)}`,
      auth: { headers: headers ?? {} },
      extraHeaders,
      transportOptions: { polling: { extraHeaders } },
      reconnection: false,
      ...(transports ? { transports } : {}),
    });
    const socket = echo.connector.socket;
    sockets.push(echo);
    socket.errors = [];
    socket.on('subscription_error', (channel, status) => socket.errors.push({ channel, status }));
    await waitFor(() => socket.connected, { timeout: 10000, what: `socket.io ${version} connected` });
    return echo;
  }

  /** Resolves once the node handled everything this client sent before (packets are handled in order). */
  function settled(echo) {
    const socket = echo.connector.socket;
    return waitFor(new Promise((resolve) => socket.emit('herald:settled', {}, resolve)), { timeout: 10000, what: 'socket.io ack' });
  }

  before(async () => {
    authApp = await startAuthApp();
    cluster = await startCluster({ n: 3, lb: false, env: { HERALD_AUTH_URL: `${authApp.url}/broadcasting/auth` } });
  });

  after(async () => {
    for (const echo of sockets) echo.disconnect();
    await closeClients();
    if (cluster) await cluster.stop();
    if (authApp) await authApp.stop();
  });

  e2e('a Laravel broadcast reaches socket.io 2.x and 4.x clients and pusher-js on three nodes, data intact', async () => {
    const v2 = await sioEcho('v2', 0);
    const v4 = await sioEcho('v4', 1);
    const got2 = recorder();
    const got4 = recorder();
    v2.channel('orders').listen('OrderShipped', got2.fn);
    v4.channel('orders').listen('OrderShipped', got4.fn);
    const pusher = makeEcho({ port: port(2) });
    const gotP = recorder();
    await echoSubscribed(pusher.channel('orders').listen('OrderShipped', gotP.fn));
    await settled(v2);
    await settled(v4);
    const order = { id: 1, total: 9.5, items: [{ sku: 'a/b', qty: 2 }], note: 'héllo "world" <b>' };
    await broadcast({ channels: [{ type: 'public', name: 'orders' }], event_class: 'OrderShipped', data: { order } });
    for (const rec of [got2, got4, gotP]) assert.deepEqual((await rec.next(1)).order, order);
    // long-polling only, as a client behind a proxy without WebSocket
    const polling = await sioEcho('v4', 2, { transports: ['polling'] });
    const gotPoll = recorder();
    polling.channel('orders').listen('.custom.name', gotPoll.fn);
    await settled(polling);
    await broadcast({ channels: [{ type: 'public', name: 'orders' }], event_class: 'X', broadcast_as: 'custom.name', data: { n: 2 } });
    assert.equal((await gotPoll.next(1)).n, 2);
  });

  e2e('private channels: the app\'s own auth decides, with the client\'s cookie or auth headers', async () => {
    const ada = await sioEcho('v4', 0, { user: 1 });
    const bob = await sioEcho('v2', 1, { headers: { Authorization: 'Bearer user-2' } });
    const guest = await sioEcho('v4', 2);
    const adaGot = recorder();
    const bobGot = recorder();
    ada.private('orders.1').listen('OrderShipped', adaGot.fn);
    bob.private('orders.2').listen('OrderShipped', bobGot.fn);
    bob.private('orders.1');
    guest.private('orders.1');
    await Promise.all([settled(ada), settled(bob), settled(guest)]);
    assert.deepEqual(bob.connector.socket.errors, [{ channel: 'private-orders.1', status: 403 }]);
    assert.deepEqual(guest.connector.socket.errors, [{ channel: 'private-orders.1', status: 403 }]);
    assert.deepEqual(ada.connector.socket.errors, []);
    await broadcast({ channels: [{ type: 'private', name: 'orders.1' }, { type: 'private', name: 'orders.2' }], data: { ok: 1 } });
    assert.equal((await adaGot.next(1)).ok, 1);
    assert.equal((await bobGot.next(1)).ok, 1);
    await expectNothing(200);
    assert.equal(adaGot.count, 1);
    // what the app was asked: channel_name, the cookie from the handshake, Echo's headers
    const asked = (channel, user) => authApp.requests().find((r) => r.input.channel_name === channel && r.user_id === user);
    const adaAsked = asked('private-orders.1', 1);
    assert.equal(adaAsked?.headers.cookie, 'laravel_session=1', JSON.stringify(authApp.requests()));
    assert.equal(adaAsked.headers['x-requested-with'], 'XMLHttpRequest');
    assert.equal(asked('private-orders.2', 2)?.headers.authorization, 'Bearer user-2');
  });

  e2e('refused: another user\'s #server-to-user channel; headers a page cannot set are the handshake\'s', async () => {
    const mallory = await sioEcho('v4', 0, {
      user: 2,
      headers: { Origin: 'http://127.0.0.1', 'X-Socket-ID': 'forged', Referer: 'http://forged.test/' },
    });
    const socket = mallory.connector.socket;
    socket.emit('subscribe', { channel: '#server-to-user-1', auth: {} });
    mallory.private('orders.2');
    await settled(mallory);
    assert.deepEqual(socket.errors, [{ channel: '#server-to-user-1', status: 401 }]);
    const asked = authApp.requests().filter((r) => r.input.channel_name === 'private-orders.2' && r.user_id === 2).pop();
    assert.equal(asked.headers['x-socket-id'], mallory.socketId(), 'X-Socket-ID is the connection\'s own id');
    assert.notEqual(asked.headers['x-socket-id'], 'forged');
  });

  e2e('origins: a page on the same host (any port) may connect and poll; a page on another site may not', async () => {
    const handshake = (origin) => fetch(`http://127.0.0.1:${port(0)}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
    const same = await handshake('http://127.0.0.1:8080');
    assert.equal(same.status, 200);
    assert.equal(same.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8080');
    assert.equal(same.headers.get('access-control-allow-credentials'), 'true');
    const other = await handshake('http://evil.test');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    // the session it opened is refused before it can subscribe
    const sid = JSON.parse((await other.text()).slice(1)).sid;
    await waitFor(async () => {
      const poll = await fetch(`http://127.0.0.1:${port(0)}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      const body = await poll.text();
      return poll.status !== 200 || body.includes('not allowed');
    }, { what: 'the foreign page\'s session refused' });
    const huge = await fetch(`http://127.0.0.1:${port(0)}/socket.io/?EIO=4&transport=polling`, { headers: { 'x-filler': 'a'.repeat(17000) } });
    assert.equal(huge.status, 431);
  });

  e2e('a node holding HERALD_SOCKETIO_MAX_CLIENTS answers new handshakes 503, so clients go elsewhere', async () => {
    const full = await cluster.addNode({ HERALD_SOCKETIO_MAX_CLIENTS: '1' });
    try {
      const url = `http://127.0.0.1:${full.port}/socket.io/?EIO=4&transport=polling`;
      assert.equal((await fetch(url)).status, 200);
      assert.equal((await fetch(url)).status, 503);
    } finally {
      await full.stop();
      cluster.nodes.splice(cluster.nodes.indexOf(full), 1);
    }
  });

  e2e('presence across protocols and nodes: here, joining, leaving with user_info; whispers both ways', { timeout: 30000 }, async () => {
    const channel = 'chat.1';
    // socket.io 4.x as Ada on node 0
    const ada = await sioEcho('v4', 0, { user: 1 });
    const adaHere = recorder();
    const adaJoin = recorder();
    const adaLeave = recorder();
    const adaWhisper = recorder();
    ada.join(channel).here(adaHere.fn).joining(adaJoin.fn).leaving(adaLeave.fn).listenForWhisper('typing', adaWhisper.fn);
    assert.deepEqual(await adaHere.next(1), [{ id: 1, name: 'Ada' }]);
    // pusher-js as user 3 on node 1 (its auth signed by the app's Pusher broadcaster)
    const cy = makeEcho({ port: port(1), userId: 3, userName: 'Cy' });
    const cyHere = recorder();
    const cyJoin = recorder();
    const cyLeave = recorder();
    const cyWhisper = recorder();
    const cyChannel = cy.join(channel).here(cyHere.fn).joining(cyJoin.fn).leaving(cyLeave.fn).listenForWhisper('typing', cyWhisper.fn);
    const cyMembers = await cyHere.next(1);
    assert.deepEqual(cyMembers.map((m) => m.name).sort(), ['Ada', 'Cy']);
    assert.deepEqual(await adaJoin.next(1), { id: 3, name: 'Cy' });
    // socket.io 2.x as Bob on node 2
    const bob = await sioEcho('v2', 2, { headers: { Authorization: 'Bearer user-2' } });
    const bobHere = recorder();
    bob.join(channel).here(bobHere.fn);
    assert.deepEqual((await bobHere.next(1)).map((m) => m.name).sort(), ['Ada', 'Bob', 'Cy']);
    assert.deepEqual(await adaJoin.next(2), { id: 2, name: 'Bob' });
    assert.deepEqual(await cyJoin.next(1), { id: 2, name: 'Bob' });
    // whispers: socket.io -> pusher-js and pusher-js -> socket.io, never echoed to the sender
    ada.join(channel).whisper('typing', { from: 'Ada' });
    assert.deepEqual(await cyWhisper.next(1), { from: 'Ada' });
    await echoSubscribed(cyChannel);
    cyChannel.whisper('typing', { from: 'Cy' });
    assert.deepEqual(await adaWhisper.next(1), { from: 'Cy' });
    await expectNothing(200);
    assert.equal(adaWhisper.count, 1);
    assert.equal(cyWhisper.count, 1);
    // Bob leaves: both others hear it once, with his info
    bob.disconnect();
    assert.deepEqual(await adaLeave.next(1), { id: 2, name: 'Bob' });
    assert.deepEqual(await cyLeave.next(1), { id: 2, name: 'Bob' });
    await expectNothing(300);
    assert.equal(adaJoin.count, 2, 'no spurious joining');
    assert.equal(adaLeave.count, 1);
  });

  e2e('toOthers(): the X-Socket-ID Echo sends (a socket.io id) keeps the event from its sender', async () => {
    const sender = await sioEcho('v4', 0);
    const other = await sioEcho('v2', 1);
    const senderGot = recorder();
    const otherGot = recorder();
    sender.channel('feed').listen('Posted', senderGot.fn);
    other.channel('feed').listen('Posted', otherGot.fn);
    await Promise.all([settled(sender), settled(other)]);
    const socketId = sender.socketId();
    assert.match(socketId, /^[A-Za-z0-9_-]+$/);
    await broadcast({ channels: [{ type: 'public', name: 'feed' }], event_class: 'Posted', data: { n: 1 }, socket: socketId });
    assert.equal((await otherGot.next(1)).n, 1);
    await expectNothing(300);
    assert.equal(senderGot.count, 0, 'the sender got its own event');
  });

  e2e('metrics count socket.io clients under protocol="socketio"', async () => {
    const before = await connections(0, 'socketio');
    const extra = await sioEcho('v4', 0);
    await waitFor(async () => (await connections(0, 'socketio')) === before + 1, { what: 'the socket.io gauge up by one' });
    extra.disconnect();
    await waitFor(async () => (await connections(0, 'socketio')) === before, { what: 'the socket.io gauge back down' });
  });

  async function connections(node, protocol) {
    const { body } = await httpGet(port(node), '/metrics');
    const line = body.split('\n').find((l) => l.startsWith(`herald_connections{app="${APP_ID}",protocol="${protocol}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  e2e('a node killed -9: its socket.io members leave the others\' lists within 5 s', { timeout: 45000 }, async () => {
    const victim = await cluster.addNode();
    const channel = 'chat.9';
    const ada = await sioEcho('v4', 0, { user: 1 });
    const adaHere = recorder();
    const adaJoin = recorder();
    const adaLeave = recorder();
    ada.join(channel).here(adaHere.fn).joining(adaJoin.fn).leaving(adaLeave.fn);
    await adaHere.next(1);
    const victimIndex = cluster.nodes.indexOf(victim);
    const bob = await sioEcho('v2', victimIndex, { user: 2 });
    bob.join(channel);
    assert.deepEqual(await adaJoin.next(1), { id: 2, name: 'Bob' });
    const killedAt = Date.now();
    await victim.kill9();
    assert.deepEqual(await adaLeave.next(1, 8000), { id: 2, name: 'Bob' });
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`# kill -9 -> presence:leaving after ${seconds.toFixed(2)} s`);
    assert.ok(seconds < 5, `leaving took ${seconds} s`);
    cluster.nodes.splice(victimIndex, 1);
  });

  e2e('headless Chromium: a page with Echo on socket.io receives a Laravel broadcast', { timeout: 60000 }, async () => {
    const page = `<!doctype html><meta charset="utf-8"><title>socket.io</title>
<script src="/socket.io.js"></script><script src="/echo.js"></script>
<script>
  window.received = [];
  window.Echo = new Echo.default({ broadcaster: 'socket.io', client: io, host: 'http://127.0.0.1:${port(1)}' });
  window.Echo.channel('browser').listen('.ping', (e) => window.received.push(e));
</script>`;
    const files = {
      '/': ['text/html', page],
      '/socket.io.js': ['text/javascript', fs.readFileSync(path.join(REPO_ROOT, 'tests/node_modules/socket.io-client/dist/socket.io.min.js'))],
      '/echo.js': ['text/javascript', fs.readFileSync(path.join(REPO_ROOT, 'tests/node_modules/laravel-echo/dist/echo.iife.js'))],
    };
    const server = http.createServer((req, res) => {
      const file = files[req.url];
      if (!file) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'content-type': file[0] });
      res.end(file[1]);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const browser = await launchChromium();
    try {
      const tab = await browser.newPage();
      const errors = [];
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(`http://127.0.0.1:${server.address().port}/`);
      await tab.waitForFunction(() => window.Echo.connector.socket.connected, null, { timeout: 10000 });
      await tab.evaluate(() => new Promise((resolve) => window.Echo.connector.socket.emit('herald:settled', {}, resolve)));
      await broadcast({ channels: [{ type: 'public', name: 'browser' }], event_class: 'X', broadcast_as: 'ping', data: { hello: 'browser' } });
      await tab.waitForFunction(() => window.received.length === 1, null, { timeout: 5000 });
      assert.deepEqual(await tab.evaluate(() => window.received[0].hello), 'browser');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      server.close();
    }
  });
});

describe('moving from laravel-echo-server: its laravel-echo-server.json and its HTTP API', { skip: !runRedis && 'HERALD_TEST_MODE=embedded' }, () => {
  const KEY = '8c3bdc8b1f5a2b7de1e4d0c9a7f6e5d4';
  let redis;
  let authApp;
  let herald;
  let dir;
  const echos = [];

  before(async () => {
    redis = await startRedis();
    authApp = await startAuthApp();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-les-'));
    // what `laravel-echo-server init` writes, pointed at this test's Redis and Laravel app
    const file = path.join(dir, 'laravel-echo-server.json');
    fs.writeFileSync(file, JSON.stringify({
      authHost: authApp.url,
      authEndpoint: '/broadcasting/auth',
      clients: [{ appId: 'echo-app', key: KEY }],
      database: 'redis',
      databaseConfig: { redis: { port: String(redis.port), host: '127.0.0.1', keyPrefix: 'laravel_database_' }, sqlite: {} },
      devMode: false,
      host: null,
      port: '6001',
      protocol: 'http',
      socketio: {},
      sslCertPath: '',
      sslKeyPath: '',
      sslCertChainPath: '',
      sslPassphrase: '',
      subscribers: { http: true, redis: true },
      apiOriginAllow: { allowCors: false, allowOrigin: '', allowMethods: '', allowHeaders: '' },
    }, null, 2));
    herald = await startHerald({ env: { HERALD_ECHO_SERVER_CONFIG: file, HERALD_APP_ID: undefined } });
  });

  after(async () => {
    for (const echo of echos) echo.disconnect();
    if (herald) await herald.stop();
    if (authApp) await authApp.stop();
    if (redis) await redis.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const api = async (method, urlPath, { body, bearer } = {}) => {
    const res = await fetch(`http://127.0.0.1:${herald.port}${urlPath}`, {
      method,
      headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: await res.json() };
  };

  e2e('the file gives Redis, the prefix, the auth URL and the app; its API answers with its shapes', async () => {
    assert.match(herald.logs(), /Redis \(databaseConfig\.redis\) from/);
    const echo = new Echo({
      broadcaster: 'socket.io',
      client: CLIENTS.v2,
      host: `http://127.0.0.1:${herald.port}`,
      extraHeaders: { Cookie: 'laravel_session=1' },
      reconnection: false,
    });
    echos.push(echo);
    const here = recorder();
    const flash = recorder();
    echo.join('chat.5').here(here.fn);
    echo.channel('news').listen('.Flash', flash.fn);
    assert.deepEqual(await here.next(1), [{ id: 1, name: 'Ada' }]);
    await laravelBroadcast(redis.port, { channels: [{ type: 'public', name: 'news' }], event_class: 'X', broadcast_as: 'Flash', data: { from: 'laravel' } });
    assert.equal((await flash.next(1)).from, 'laravel');

    const status = await api('GET', `/apps/echo-app/status?auth_key=${KEY}`);
    assert.equal(status.status, 200);
    assert.equal(status.json.subscription_count, 1);
    assert.equal(typeof status.json.uptime, 'number');
    const channels = await api('GET', '/apps/echo-app/channels', { bearer: KEY });
    assert.deepEqual(channels.json.channels['presence-chat.5'], { subscription_count: 1, occupied: true });
    assert.deepEqual(channels.json.channels.news, { subscription_count: 1, occupied: true });
    const channel = await api('GET', `/apps/echo-app/channels/presence-chat.5?auth_key=${KEY}`);
    assert.deepEqual(channel.json, { subscription_count: 1, occupied: true, user_count: 1 });
    const users = await api('GET', `/apps/echo-app/channels/presence-chat.5/users?auth_key=${KEY}`);
    assert.deepEqual(users.json, { users: [{ id: '1', user_info: { id: 1, name: 'Ada' } }] });
    const sent = await api('POST', `/apps/echo-app/events?auth_key=${KEY}`, { body: { channel: 'news', name: 'Flash', data: { from: 'api' } } });
    assert.deepEqual(sent, { status: 200, json: { message: 'ok' } });
    assert.equal((await flash.next(2)).from, 'api');

    const wrong = await api('GET', `/apps/echo-app/status?auth_key=${KEY.replace(/.$/, 'x')}`);
    assert.deepEqual(wrong, { status: 403, json: { error: 'Unauthorized' } });
    const bad = await api('POST', `/apps/echo-app/events?auth_key=${KEY}`, { body: { channel: 'news' } });
    assert.equal(bad.status, 400);
  });
});
