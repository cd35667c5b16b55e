// Redis goes away and comes back empty: /readyz follows, clients stay connected, ingest resumes.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, useServer, stopServer, makeEcho, echoConnected, echoState,
  echoSubscribed, recorder, waitFor, readyzStatus, httpGet, rawClient,
} from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';

const runRedis = process.env.HERALD_TEST_MODE !== 'embedded';

describe('redis restart', { skip: !runRedis && 'HERALD_TEST_MODE=embedded' }, () => {
  const ctx = {};
  before(useServer(ctx, 'redis'));
  after(stopServer(ctx));
  autoCloseClients();

  e2e('readyz 503 while Redis is down, 200 after; a connected client gets broadcasts again', { timeout: 60000 }, async () => {
    const echo = makeEcho({ port: ctx.port });
    const socketId = await echoConnected(echo);
    const rec = recorder();
    const ch = echo.private('orders.1').listen('OrderShipped', rec.fn);
    await echoSubscribed(ch);
    const raw = await rawClient(ctx.port);
    await raw.subscribeOk('orders');
    const channels = [{ type: 'private', name: 'orders.1' }, { type: 'public', name: 'orders' }];

    await laravelBroadcast(ctx.redis.port, { channels, data: { order: { id: 'before' } } });
    assert.deepEqual((await rec.next(1)).order, { id: 'before' });
    await raw.next('App\\Events\\OrderShipped');

    await ctx.redis.stop();
    await waitFor(async () => (await readyzStatus(ctx.port)) === 503, { timeout: 15000, what: '/readyz 503 while Redis is down' });
    assert.equal((await httpGet(ctx.port, '/livez')).status, 200, '/livez stays 200');

    await ctx.redis.restart();
    await waitFor(async () => (await readyzStatus(ctx.port)) === 200, { timeout: 30000, what: '/readyz 200 after Redis is back' });

    await laravelBroadcast(ctx.redis.port, { channels, data: { order: { id: 'after' } } });
    assert.deepEqual((await rec.next(2, 10000)).order, { id: 'after' });
    const f = await raw.next('App\\Events\\OrderShipped', 10000);
    assert.equal(JSON.parse(f.data).order.id, 'after');

    assert.equal(echoState(echo), 'connected');
    assert.equal(echo.socketId(), socketId, 'the client kept its connection (no resubscribe needed)');
    assert.ok(raw.isOpen());
    await raw.ping();

    // The window in which broadcasts could not reach this node is counted and logged, not lost silently.
    const metrics = (await httpGet(ctx.port, '/metrics')).body;
    const gaps = Number(/^herald_redis_subscription_gap_seconds_count (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(gaps >= 1, `gap windows counted: ${gaps}`);
    assert.match(ctx.herald.logs(), /Redis subscription was down/);
  });
});
