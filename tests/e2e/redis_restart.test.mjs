// Redis goes away and comes back empty: /readyz follows, clients stay connected, ingest resumes.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  e2e, autoCloseClients, useServer, stopServer, makeEcho, echoConnected, echoState,
  echoSubscribed, recorder, waitFor, readyzStatus, httpGet, rawClient, pusherServer, signPresence, presenceData, dataOf,
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

  e2e('Redis out of memory (maxmemory, noeviction): the node stays ready and delivers; presence joins get 503', { timeout: 60000 }, async () => {
    const cli = (...args) => execFileSync('redis-cli', ['-p', String(ctx.redis.port), ...args]).toString().trim();
    const oomCount = async () => Number(/^herald_redis_out_of_memory_total (\d+)/m.exec((await httpGet(ctx.port, '/metrics')).body)?.[1] ?? 0);
    const raw = await rawClient(ctx.port);
    await raw.subscribeOk('news');
    assert.equal(cli('CONFIG', 'SET', 'maxmemory', '1'), 'OK');
    try {
      const before = await oomCount();
      // Several refused renewals: longer than a lease (2 s) in which no renewal succeeded.
      await waitFor(async () => (await oomCount()) >= before + 6, { timeout: 15000, what: 'renewals refused for lack of memory' });
      assert.equal(await readyzStatus(ctx.port), 200, 'still ready: broadcasts flow');
      await pusherServer(ctx.port).trigger('news', 'during-oom', { ok: true });
      assert.equal(dataOf(await raw.next('during-oom')).ok, true);
      const d = presenceData('9', 'Oom');
      raw.subscribe('presence-oom', { auth: signPresence(raw.socketId, 'presence-oom', d), channel_data: d });
      const refused = await raw.next('pusher:subscription_error');
      assert.equal(dataOf(refused).status, 503);
      assert.match(ctx.herald.logs(), /Redis is out of memory/);
    } finally {
      cli('CONFIG', 'SET', 'maxmemory', '0');
    }
    await waitFor(async () => (await readyzStatus(ctx.port)) === 200, { timeout: 10000, what: 'ready after memory is back' });
  });
});
