// Laravel's real RedisBroadcaster (PHP, EVAL + PUBLISH) -> Herald -> laravel-echo.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, closeClients, useServer, stopServer, startRedis, startHerald, makeEcho, echoConnected,
  echoSubscribed, recorder, expectNothing, rawClient, twoEchoListeners,
} from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';

const runRedis = process.env.HERALD_TEST_MODE !== 'embedded';

describe('laravel redis ingest', { skip: !runRedis && 'HERALD_TEST_MODE=embedded' }, () => {
  const ctx = {};
  before(useServer(ctx, 'redis'));
  after(stopServer(ctx));
  autoCloseClients();
  const broadcast = (opts) => laravelBroadcast(ctx.redis.port, opts);

  e2e('PrivateChannel(orders.1) OrderShipped reaches Echo listen(OrderShipped) intact', async () => {
    const echo = makeEcho({ port: ctx.port });
    const rec = recorder();
    const ch = echo.private('orders.1').listen('OrderShipped', rec.fn);
    await echoSubscribed(ch);
    const order = { id: 1, total: 9.5, items: [{ sku: 'a/b', qty: 2 }], note: 'héllo "world" <b>' };
    await broadcast({ channels: [{ type: 'private', name: 'orders.1' }], event_class: 'OrderShipped', data: { order } });
    const got = await rec.next(1);
    assert.deepEqual(got.order, order);
    const extra = Object.keys(got).filter((k) => k !== 'order' && k !== 'socket');
    assert.deepEqual(extra, [], `unexpected keys in data: ${JSON.stringify(got)}`);
    if ('socket' in got) assert.equal(got.socket, null);
    // on the wire: event name is the FQCN, data is a string
    const frame = echo.frames.find((f) => f.channel === 'private-orders.1' && f.event === 'App\\Events\\OrderShipped');
    assert.ok(frame, JSON.stringify(echo.frames));
  });

  e2e('broadcastAs(message.sent) reaches listen(.message.sent)', async () => {
    const raw = await rawClient(ctx.port);
    await raw.subscribeOk('chat');
    const echo = makeEcho({ port: ctx.port });
    const rec = recorder();
    const ch = echo.channel('chat').listen('.message.sent', rec.fn);
    await echoSubscribed(ch);
    await broadcast({ channels: [{ type: 'public', name: 'chat' }], event_class: 'MessageSent', broadcast_as: 'message.sent', data: { text: 'hi/ü', n: 3 } });
    const got = await rec.next(1);
    assert.equal(got.text, 'hi/ü');
    assert.equal(got.n, 3);
    const f = await raw.next('message.sent');
    assert.equal(f.channel, 'chat');
    assert.equal(typeof f.data, 'string', 'data must be re-serialised to a JSON string');
  });

  e2e('one event on two channels arrives on both, once each', async () => {
    const echo = makeEcho({ port: ctx.port });
    const pub = recorder();
    const priv = recorder();
    const chPub = echo.channel('orders').listen('OrderShipped', pub.fn);
    const chPriv = echo.private('orders.7').listen('OrderShipped', priv.fn);
    await echoSubscribed(chPub);
    await echoSubscribed(chPriv);
    const channels = [{ type: 'public', name: 'orders' }, { type: 'private', name: 'orders.7' }];
    await broadcast({ channels, data: { order: { id: 7 } } });
    assert.deepEqual((await pub.next(1)).order, { id: 7 });
    assert.deepEqual((await priv.next(1)).order, { id: 7 });
    // marker: a second broadcast on both
    await broadcast({ channels, data: { order: { id: 8 } } });
    assert.deepEqual((await pub.next(2)).order, { id: 8 });
    assert.deepEqual((await priv.next(2)).order, { id: 8 });
    await expectNothing(200);
    assert.equal(pub.count, 2, JSON.stringify(pub.calls));
    assert.equal(priv.count, 2, JSON.stringify(priv.calls));
  });

  e2e('presence channel broadcast reaches join().listen()', async () => {
    const echo = makeEcho({ port: ctx.port, userId: 5 });
    const rec = recorder();
    const ch = echo.join('chat.1').listen('.message.sent', rec.fn);
    await echoSubscribed(ch);
    await broadcast({ channels: [{ type: 'presence', name: 'chat.1' }], event_class: 'MessageSent', broadcast_as: 'message.sent', data: { text: 'yo' } });
    assert.equal((await rec.next(1)).text, 'yo');
  });

  e2e('toOthers(): the sender socket is skipped, another client gets it', async () => {
    const { socketA, recA, recB } = await twoEchoListeners(ctx.port, (echo, fn) => echo.private('orders.9').listen('OrderShipped', fn));
    const channels = [{ type: 'private', name: 'orders.9' }];
    await broadcast({ channels, data: { order: { id: 1 } }, socket: socketA });
    assert.deepEqual((await recB.next(1)).order, { id: 1 });
    // marker: a broadcast to everyone reaches A
    await broadcast({ channels, data: { order: { id: 2 } } });
    assert.deepEqual((await recA.next(1)).order, { id: 2 });
    assert.deepEqual((await recB.next(2)).order, { id: 2 });
    await expectNothing(200);
    assert.equal(recA.count, 1, `the excluded socket got: ${JSON.stringify(recA.calls)}`);
  });

  e2e('a prefix Herald is not configured for is ignored', async () => {
    const echo = makeEcho({ port: ctx.port });
    const rec = recorder();
    const ch = echo.channel('prefixed').listen('OrderShipped', rec.fn);
    await echoSubscribed(ch);
    await broadcast({ channels: [{ type: 'public', name: 'prefixed' }], data: { order: { id: 'other' } }, prefix: 'other_' });
    await broadcast({ channels: [{ type: 'public', name: 'prefixed' }], data: { order: { id: 'hyphen' } }, prefix: 'laravel-database-' });
    await broadcast({ channels: [{ type: 'public', name: 'prefixed' }], data: { order: { id: 'none' } }, prefix: '' });
    await broadcast({ channels: [{ type: 'public', name: 'prefixed' }], data: { order: { id: 'marker' } } });
    assert.deepEqual((await rec.next(1)).order, { id: 'marker' });
    await expectNothing(300);
    assert.deepEqual(rec.calls.map((c) => c.order.id), ['marker']);
  });
});

describe('laravel redis ingest: prefix configuration', { skip: !runRedis && 'HERALD_TEST_MODE=embedded' }, () => {
  const ctx = {};
  before(async () => {
    ctx.redis = await startRedis();
  });
  after(async () => {
    await closeClients();
    await ctx.redis?.stop();
  });
  autoCloseClients();

  e2e('HERALD_REDIS_PREFIX=laravel_database_,laravel-database- delivers both, not other_', async (t) => {
    const herald = await startHerald({ redisUrl: ctx.redis.url, env: { HERALD_REDIS_PREFIX: 'laravel_database_,laravel-database-' } });
    t.after(() => herald.stop());
    const echo = makeEcho({ port: herald.port });
    const rec = recorder();
    const ch = echo.private('orders.1').listen('OrderShipped', rec.fn);
    await echoSubscribed(ch);
    const channels = [{ type: 'private', name: 'orders.1' }];
    await laravelBroadcast(ctx.redis.port, { channels, data: { order: { id: 'hyphen' } }, prefix: 'laravel-database-' });
    assert.deepEqual((await rec.next(1)).order, { id: 'hyphen' });
    await laravelBroadcast(ctx.redis.port, { channels, data: { order: { id: 'other' } }, prefix: 'other_' });
    await laravelBroadcast(ctx.redis.port, { channels, data: { order: { id: 'underscore' } }, prefix: 'laravel_database_' });
    assert.deepEqual((await rec.next(2)).order, { id: 'underscore' });
    await expectNothing(300);
    assert.deepEqual(rec.calls.map((c) => c.order.id), ['hyphen', 'underscore']);
  });

  e2e('HERALD_REDIS_PREFIX="" (Laravel REDIS_PREFIX=) delivers unprefixed channels', async (t) => {
    const herald = await startHerald({ redisUrl: ctx.redis.url, env: { HERALD_REDIS_PREFIX: '' } });
    t.after(() => herald.stop());
    const echo = makeEcho({ port: herald.port });
    const rec = recorder();
    const ch = echo.private('orders.2').listen('OrderShipped', rec.fn);
    await echoSubscribed(ch);
    await laravelBroadcast(ctx.redis.port, { channels: [{ type: 'private', name: 'orders.2' }], data: { order: { id: 2 } }, prefix: '' });
    assert.deepEqual((await rec.next(1)).order, { id: 2 });
  });
});
