// The whole Pusher HTTP API through the official `pusher` SDK, answered for the whole cluster from any
// node, checked against what real clients on different nodes see; plus sign-in, sending to a user and
// terminating a user's connections on every node.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  e2e, autoCloseClients, closeClients, rawClient, pusherServer, dataOf, waitFor, hmacHex, signPrivate,
  APP_KEY, APP_SECRET, APP_ID, makeEcho, echoSubscribed, recorder,
} from '../lib/harness.mjs';
import { startCluster } from '../lib/cluster.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the SDK call to reject');
}

async function json(response) {
  return JSON.parse(await response.text());
}

function signin(client, userData) {
  const auth = `${APP_KEY}:${hmacHex(APP_SECRET, `${client.socketId}::user::${userData}`)}`;
  client.send({ event: 'pusher:signin', data: { auth, user_data: userData } });
  return client.next('pusher:signin_success');
}

/** A raw signed request, to send what the SDK never would (a stale timestamp). */
function signedRequest(port, method, path, body, { timestamp = Math.floor(Date.now() / 1000), secret = APP_SECRET } = {}) {
  const md5 = body ? require('node:crypto').createHash('md5').update(body).digest('hex') : null;
  const params = { auth_key: APP_KEY, auth_timestamp: String(timestamp), auth_version: '1.0' };
  if (md5) params.body_md5 = md5;
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  const signature = hmacHex(secret, `${method}\n${path}\n${query}`);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: `${path}?${query}&auth_signature=${signature}`, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

describe('HTTP API across a cluster', { skip }, () => {
  let cluster;
  before(async () => { cluster = await startCluster({ n: 2, lb: false }); });
  after(async () => { await closeClients(); await cluster?.stop(); });
  autoCloseClients();
  const port = (i) => cluster.nodes[i].port;

  e2e('channels, channel, users and info are the same from every node', async () => {
    const a = await rawClient(port(0));
    const b = await rawClient(port(1));
    const b2 = await rawClient(port(1));
    await a.subscribePresence('presence-room', 1, 'One');
    await b.subscribePresence('presence-room', 2, 'Two');
    await b2.subscribePresence('presence-room', 1, 'One');
    await a.subscribeOk('news');
    await b.subscribeOk('news');
    for (const i of [0, 1]) {
      const api = pusherServer(port(i));
      await waitFor(async () => {
        const all = await json(await api.get({ path: '/channels' }));
        return all.channels.news && all.channels['presence-room'];
      }, { what: `node ${i} lists both channels` });
      const presence = await json(await api.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
      assert.deepEqual(presence, { channels: { 'presence-room': { user_count: 2 } } });
      const room = await json(await api.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } }));
      assert.deepEqual(room, { occupied: true, user_count: 2, subscription_count: 3 });
      const news = await json(await api.get({ path: '/channels/news', params: { info: 'subscription_count' } }));
      assert.deepEqual(news, { occupied: true, subscription_count: 2 });
      const empty = await json(await api.get({ path: '/channels/nobody-here' }));
      assert.deepEqual(empty, { occupied: false });
      const users = await json(await api.get({ path: '/channels/presence-room/users' }));
      assert.deepEqual(users.users.map((u) => u.id).sort(), ['1', '2']);
    }
    const api = pusherServer(port(0));
    assert.equal((await rejection(api.get({ path: '/channels', params: { info: 'user_count' } }))).status, 400);
    assert.equal((await rejection(api.get({ path: '/channels/news', params: { info: 'user_count' } }))).status, 400);
    assert.equal((await rejection(api.get({ path: '/channels/news/users' }))).status, 400);
    // counts follow clients leaving, on the other node
    await b2.close();
    await waitFor(async () => {
      const room = await json(await api.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } }));
      return room.subscription_count === 2 && room.user_count === 2;
    }, { what: 'subscription_count 2 after a tab closed' });
    await a.close();
    await b.close();
    await waitFor(async () => {
      const all = await json(await api.get({ path: '/channels' }));
      return Object.keys(all.channels).length === 0;
    }, { what: 'no channel listed once everyone left' });
  });

  e2e('events with info, batch events with info, and their delivery on the other node', async () => {
    const c = await rawClient(port(1));
    await c.subscribePresence('presence-batch', 5, 'Five');
    await c.subscribeOk('plain');
    const api = pusherServer(port(0));
    await waitFor(async () => (await json(await api.get({ path: '/channels/plain' }))).occupied, { what: 'plain occupied' });
    const res = await json(await api.trigger('presence-batch', 'one', { n: 1 }, { info: 'user_count,subscription_count' }));
    assert.deepEqual(res, { channels: { 'presence-batch': { user_count: 1, subscription_count: 1 } } });
    const batch = await json(await api.triggerBatch([
      { channel: 'plain', name: 'b1', data: { n: 1 }, info: 'subscription_count' },
      { channel: 'presence-batch', name: 'b2', data: { n: 2 }, info: 'user_count' },
    ]));
    assert.deepEqual(batch, { batch: [{ subscription_count: 1 }, { user_count: 1 }] });
    await c.next('one');
    assert.deepEqual(dataOf(await c.next('b1')), { n: 1 });
    assert.deepEqual(dataOf(await c.next('b2')), { n: 2 });
    const eleven = Array.from({ length: 11 }, (_, i) => ({ channel: 'plain', name: 'x', data: String(i) }));
    assert.equal((await rejection(api.triggerBatch(eleven))).status, 400);
    const noInfo = await json(await api.triggerBatch([{ channel: 'plain', name: 'b3', data: '{}' }]));
    assert.deepEqual(noInfo, {});
  });

  e2e('signatures: wrong secret 401, stale timestamp 401, oversized 413, unknown app 404', async () => {
    const body = JSON.stringify({ name: 'x', channel: 'plain', data: '{}' });
    const path = `/apps/${APP_ID}/events`;
    assert.equal((await signedRequest(port(0), 'POST', path, body)).status, 200);
    assert.equal((await signedRequest(port(0), 'POST', path, body, { secret: 'wrong' })).status, 401);
    const stale = await signedRequest(port(0), 'POST', path, body, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    assert.equal(stale.status, 401);
    assert.match(JSON.parse(stale.text).error, /timestamp/);
    const big = JSON.stringify({ name: 'x', channel: 'plain', data: 'x'.repeat(11 * 1024) });
    assert.equal((await signedRequest(port(0), 'POST', path, big)).status, 413);
    assert.equal((await signedRequest(port(0), 'GET', '/apps/no-such-app/channels', '')).status, 404);
  });

  e2e('sign-in, sendToUser, and terminate_connections closing the user on every node', async () => {
    const userData = JSON.stringify({ id: '42', name: 'Ada' });
    const tab1 = await rawClient(port(0));
    const tab2 = await rawClient(port(1));
    const other = await rawClient(port(1));
    for (const t of [tab1, tab2]) {
      const ok = await signin(t, userData);
      assert.equal(dataOf(ok).user_data, userData);
      await t.subscribeOk('#server-to-user-42');
    }
    other.subscribe('#server-to-user-42');
    const refused = await other.next('pusher:subscription_error');
    assert.equal(dataOf(refused).status, 401, 'only the signed-in user may subscribe to its channel');
    // a presence subscribe without channel_data uses the sign-in data (pusher-js 8 does this), and still
    // needs the app's signature for this socket and channel
    tab2.subscribe('presence-signed', { auth: `${APP_KEY}:forged` });
    assert.equal(dataOf(await tab2.next('pusher:subscription_error')).status, 401);
    const joined = await tab1.subscribeOk('presence-signed', { auth: signPrivate(tab1.socketId, 'presence-signed') });
    assert.deepEqual(dataOf(joined).presence.hash['42'], { id: '42', name: 'Ada' });
    const api = pusherServer(port(0));
    await api.sendToUser('42', 'hello', { text: 'hi Ada' });
    for (const t of [tab1, tab2]) assert.deepEqual(dataOf(await t.next('hello')), { text: 'hi Ada' });
    other.send({ event: 'pusher:signin', data: { auth: `${APP_KEY}:forged`, user_data: JSON.stringify({ id: '42' }) } });
    assert.equal(dataOf(await other.next('pusher:error')).code, 4009, 'a forged sign-in is refused');
    await api.terminateUserConnections('42');
    const [c1, c2] = await Promise.all([tab1.waitClosed(5000), tab2.waitClosed(5000)]);
    assert.equal(c1.code, 4009);
    assert.equal(c2.code, 4009);
    assert.ok(other.isOpen(), 'other users stay connected');
    await other.ping();
  });

  e2e('an Echo client signed in through pusher-js receives sendToUser', async () => {
    const echo = makeEcho({
      port: port(1),
      pusherOptions: {
        userAuthentication: {
          customHandler: ({ socketId }, callback) => {
            const userData = JSON.stringify({ id: '77', name: 'Echo' });
            callback(null, { auth: `${APP_KEY}:${hmacHex(APP_SECRET, `${socketId}::user::${userData}`)}`, user_data: userData });
          },
        },
      },
    });
    const pusher = echo.connector.pusher;
    const rec = recorder();
    pusher.user.bind('hello', rec.fn);
    pusher.signin();
    const ch = echo.channel('warmup');
    await echoSubscribed(ch);
    await waitFor(() => pusher.user.user_data?.id === '77', { what: 'pusher-js signed in' });
    await waitFor(async () => {
      await pusherServer(port(0)).sendToUser('77', 'hello', { n: rec.count + 1 });
      return rec.count > 0;
    }, { timeout: 5000, interval: 200, what: 'sendToUser to reach pusher-js' });
  });
});
