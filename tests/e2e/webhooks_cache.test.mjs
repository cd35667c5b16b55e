// Webhooks exactly once for the whole cluster, cache channels, and encrypted channels fed by Laravel's
// RedisBroadcaster (encrypted by Herald with the app's master key, decrypted by real pusher-js).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, closeClients, rawClient, dataOf, waitFor, expectNothing, pusherServer, startHerald,
  APP_KEY, APP_SECRET, MASTER_KEY_B64, makeEcho, echoSubscribed, recorder,
} from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';
import { startCluster } from '../lib/cluster.mjs';
import { startReceiver } from '../lib/webhook_receiver.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';
const named = (name, channel) => (e) => e.name === name && e.channel === channel;

describe('webhooks and cache channels on a cluster', { skip }, () => {
  let cluster;
  let hooks;
  before(async () => {
    hooks = await startReceiver({ secret: APP_SECRET, key: APP_KEY });
    cluster = await startCluster({
      n: 3,
      lb: false,
      env: { HERALD_WEBHOOK_URL: hooks.url, HERALD_ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 },
    });
  });
  after(async () => { await closeClients(); await cluster?.stop(); await hooks?.close(); });
  autoCloseClients();
  const port = (i) => cluster.nodes[i].port;

  e2e('channel_occupied and channel_vacated once each, first and last subscribers on different nodes', async () => {
    const a = await rawClient(port(0));
    await a.subscribeOk('hooked');
    await hooks.waitEvent(named('channel_occupied', 'hooked'), 'channel_occupied');
    const b = await rawClient(port(1));
    await b.subscribeOk('hooked');
    await a.close();
    await b.close();
    await hooks.waitEvent(named('channel_vacated', 'hooked'), 'channel_vacated');
    const marker = await rawClient(port(2));
    await marker.subscribeOk('hooked-marker');
    await hooks.waitEvent(named('channel_occupied', 'hooked-marker'), 'the marker');
    assert.equal(hooks.count(named('channel_occupied', 'hooked')), 1);
    assert.equal(hooks.count(named('channel_vacated', 'hooked')), 1);
    assert.ok(hooks.received.every((r) => r.validSignature), 'every request signed with the app secret');
    assert.ok(hooks.received.every((r) => typeof r.body.time_ms === 'number'));
  });

  e2e('member_added / member_removed once per user across tabs on different nodes, and after kill -9', { timeout: 45000 }, async () => {
    const victim = await cluster.addNode({ HERALD_WEBHOOK_URL: hooks.url });
    const ch = 'presence-hooks';
    const t1 = await rawClient(port(0));
    await t1.subscribePresence(ch, 7, 'Ada');
    const t2 = await rawClient(port(1));
    await t2.subscribePresence(ch, 7, 'Ada');
    const lone = await rawClient(victim.port);
    await lone.subscribePresence(ch, 8, 'Gone');
    await hooks.waitEvent((e) => e.name === 'member_added' && e.user_id === '8', 'member_added for 8');
    await t1.close();
    await victim.kill9();
    await hooks.waitEvent((e) => e.name === 'member_removed' && e.user_id === '8', 'member_removed for the killed node\'s user', 10000);
    await t2.close();
    await hooks.waitEvent((e) => e.name === 'member_removed' && e.user_id === '7', 'member_removed for 7');
    await hooks.waitEvent(named('channel_vacated', ch), 'the presence channel vacated');
    for (const user of ['7', '8']) {
      assert.equal(hooks.count((e) => e.name === 'member_added' && e.channel === ch && e.user_id === user), 1, `member_added ${user}`);
      assert.equal(hooks.count((e) => e.name === 'member_removed' && e.channel === ch && e.user_id === user), 1, `member_removed ${user}`);
    }
    cluster.nodes.splice(cluster.nodes.indexOf(victim), 1);
  });

  e2e('webhooks held by a node killed -9 while the receiver fails are delivered once by a survivor', { timeout: 45000 }, async () => {
    const victim = await cluster.addNode({ HERALD_WEBHOOK_URL: hooks.url });
    hooks.failNext(100000);
    const c = await rawClient(victim.port);
    const channels = [1, 2, 3, 4, 5].map((i) => `durable-${i}`);
    for (const ch of channels) await c.subscribeOk(ch);
    await c.subscribePresence('presence-durable', 42, 'Kept');
    // The victim holds the events: it has tried to deliver them and the receiver refused.
    const tried = (pred) => hooks.received.some((r) => r.status === 500 && r.body.events.some(pred));
    await waitFor(() => tried(named('channel_occupied', 'durable-5')) && tried((e) => e.name === 'member_added' && e.user_id === '42'),
      { timeout: 10000, what: 'the victim to try and fail to deliver its webhooks' });
    await victim.kill9();
    cluster.nodes.splice(cluster.nodes.indexOf(victim), 1);
    hooks.failNext(0);
    for (const ch of channels) {
      await hooks.waitEvent(named('channel_occupied', ch), `channel_occupied ${ch} delivered by a survivor`, 20000);
      await hooks.waitEvent(named('channel_vacated', ch), `channel_vacated ${ch} after the reap`, 20000);
    }
    await hooks.waitEvent((e) => e.name === 'member_added' && e.user_id === '42', 'member_added 42', 20000);
    await hooks.waitEvent((e) => e.name === 'member_removed' && e.user_id === '42', 'member_removed 42', 20000);
    // A marker raised after everything: whatever was still to come has come.
    const marker = await rawClient(port(0));
    await marker.subscribeOk('durable-marker');
    await hooks.waitEvent(named('channel_occupied', 'durable-marker'), 'the marker');
    for (const ch of channels) {
      assert.equal(hooks.count(named('channel_occupied', ch)), 1, `channel_occupied ${ch} once`);
      assert.equal(hooks.count(named('channel_vacated', ch)), 1, `channel_vacated ${ch} once`);
    }
    assert.equal(hooks.count((e) => e.name === 'member_added' && e.user_id === '42'), 1);
    assert.equal(hooks.count((e) => e.name === 'member_removed' && e.user_id === '42'), 1);
    assert.ok(hooks.received.every((r) => r.validSignature), 'every request signed with the app secret');
  });

  e2e('client_event webhooks carry the event, data, socket and user', async () => {
    const a = await rawClient(port(0));
    const b = await rawClient(port(1));
    await a.subscribePresence('presence-chatty', 1, 'A');
    await b.subscribePresence('presence-chatty', 2, 'B');
    a.send({ event: 'client-typing', channel: 'presence-chatty', data: { who: 'A' } });
    await hooks.waitEvent((e) => e.name === 'client_event' && e.channel === 'presence-chatty', 'client_event');
    const e = hooks.events().find((x) => x.name === 'client_event');
    assert.equal(e.event, 'client-typing');
    assert.deepEqual(JSON.parse(e.data), { who: 'A' });
    assert.equal(e.socket_id, a.socketId);
    assert.equal(e.user_id, '1');
  });

  e2e('a receiver that fails twice then succeeds gets the batch once', async () => {
    hooks.failNext(2);
    const before = hooks.received.length;
    const c = await rawClient(port(2));
    await c.subscribeOk('retry-me');
    await hooks.waitEvent(named('channel_occupied', 'retry-me'), 'the retried batch', 15000);
    assert.equal(hooks.count(named('channel_occupied', 'retry-me')), 1);
    assert.equal(hooks.received.slice(before).filter((r) => r.status === 500).length, 2);
  });

  e2e('a cache channel joined late on another node gets the last event; an empty one gets pusher:cache_miss', async () => {
    await pusherServer(port(0)).trigger('cache-prices', 'price', { eur: 1 });
    await pusherServer(port(0)).trigger('cache-prices', 'price', { eur: 2 });
    const late = await rawClient(port(2));
    await late.subscribeOk('cache-prices');
    const last = await late.next('price');
    assert.deepEqual(dataOf(last), { eur: 2 });
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'public', name: 'cache-prices' }], data: { eur: 3 } });
    await late.next('App\\Events\\OrderShipped');
    const later = await rawClient(port(1));
    await later.subscribeOk('cache-prices');
    assert.deepEqual(dataOf(await later.next('App\\Events\\OrderShipped')), { eur: 3, socket: null });
    // a Laravel broadcast on a cache channel nobody is subscribed to, anywhere, is kept too
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'public', name: 'cache-unwatched' }], data: { eur: 4 } });
    await waitFor(async () => {
      const probe = await rawClient(port(2));
      await probe.subscribeOk('cache-unwatched');
      const first = await probe.next((f) => f.channel === 'cache-unwatched', 2000);
      await probe.close();
      return first.event === 'App\\Events\\OrderShipped' && dataOf(first).eur === 4;
    }, { timeout: 10000, interval: 100, what: 'the unwatched cache channel\'s last event' });
    const empty = await rawClient(port(1));
    await empty.subscribeOk('cache-empty');
    const miss = await empty.next('pusher:cache_miss');
    assert.equal(miss.channel, 'cache-empty');
    await hooks.waitEvent(named('cache_miss', 'cache-empty'), 'the cache_miss webhook');
  });

  e2e('pusher-js decrypts a private-encrypted- event published through Laravel\'s RedisBroadcaster', async () => {
    const echo = makeEcho({ port: port(1) });
    const rec = recorder();
    await echoSubscribed(echo.encryptedPrivate('vault.9').listen('OrderShipped', rec.fn));
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'encrypted', name: 'vault.9' }], data: { code: 'x-9' } });
    const got = await rec.next(1);
    assert.equal(got.code, 'x-9');
    const frame = echo.frames.find((f) => f.channel === 'private-encrypted-vault.9' && f.event.includes('OrderShipped'));
    assert.ok(!JSON.stringify(frame).includes('x-9'), 'the payload travels sealed');
  });
});

describe('a webhook endpoint that hangs', () => {
  let herald;
  let hooks;
  before(async () => {
    hooks = await startReceiver({ secret: APP_SECRET, key: APP_KEY });
    hooks.hang(true);
    herald = await startHerald({ env: { HERALD_WEBHOOK_URL: hooks.url } });
  });
  after(async () => { await closeClients(); await herald?.stop(); await hooks?.close(); });
  autoCloseClients();

  e2e('does not delay delivery to clients', async () => {
    const a = await rawClient(herald.port);
    const b = await rawClient(herald.port);
    await a.subscribePrivate('private-busy');
    await b.subscribePrivate('private-busy');
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      a.send({ event: 'client-tick', channel: 'private-busy', data: { i } });
      await b.next((f) => f.event === 'client-tick' && f.data.i === i, 2000);
    }
    const api = pusherServer(herald.port);
    for (let i = 0; i < 5; i++) await api.trigger('private-busy', 'tick', { i });
    await b.next((f) => f.event === 'tick' && dataOf(f).i === 4, 2000);
    assert.ok(Date.now() - started < 3000, `delivery took ${Date.now() - started} ms`);
    assert.ok(hooks.received.length === 0, 'the hanging endpoint never answered');
    await expectNothing(10);
  });
});
