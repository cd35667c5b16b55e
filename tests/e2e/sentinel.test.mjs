// Redis behind Sentinel (one primary, one replica, three sentinels, all real): three Herald nodes follow a
// failover by themselves. The primary is killed -9 while HTTP API events flow and clients sit in a presence
// channel: clients stay connected, delivery resumes (the test prints the gap and the events lost in it),
// presence lists stay right with no member event, Laravel's RedisBroadcaster reaches the new primary, and a
// Herald node killed afterwards is still reaped within seconds.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, closeClients, dataOf, waitFor, startHerald, rawClient, pusherServer, readyzStatus,
} from '../lib/harness.mjs';
import { makePki } from '../lib/tls.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';
import { startSentinelRedis } from '../lib/sentinel.mjs';
import { presenceScene, failoverUnderTraffic, assertSceneIntact, assertDeadNodeReaped } from '../lib/failover.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

describe('Redis behind Sentinel', { skip }, () => {
  let redis;
  const nodes = [];
  before(async () => {
    redis = await startSentinelRedis();
    for (let i = 0; i < 3; i++) nodes.push(await startHerald({ redisUrl: redis.url }));
  });
  after(async () => {
    await closeClients();
    for (const h of nodes) if (h.alive()) await h.stop();
    await redis?.stop();
  });

  e2e('a failover of the primary: clients stay, delivery resumes, presence stays right, a dead node is still reaped', async () => {
    const scene = await presenceScene(nodes, 'ha');
    await laravelBroadcast(await redis.primaryPort(), { channels: [{ type: 'public', name: 'ha' }], data: { phase: 'before' } });
    for (const w of scene.watchers) await w.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).phase === 'before');

    await failoverUnderTraffic(nodes, scene, 'failover', async () => {
      const oldPrimary = redis.primary.port;
      redis.primary.kill9();
      await waitFor(async () => (await redis.primaryPort()) !== oldPrimary, { timeout: 30000, what: 'the sentinels to promote the replica' });
    });

    await laravelBroadcast(await redis.primaryPort(), { channels: [{ type: 'public', name: 'ha' }], data: { phase: 'after' } });
    for (const w of scene.watchers) await w.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).phase === 'after');
    await assertSceneIntact(nodes, scene);
    await assertDeadNodeReaped(nodes, scene);
  }, { timeout: 120000 });
});

describe('Redis behind Sentinel over TLS, with passwords (rediss+sentinel://)', { skip }, () => {
  const tls = { password: 'primary-secret-1', sentinelPassword: 'sentinel-secret-2' };
  let pki;
  let redis;
  const nodes = [];
  before(async () => {
    pki = makePki();
    Object.assign(tls, { ca: pki.ca.cert, cert: pki.server.cert, key: pki.server.key });
    redis = await startSentinelRedis({ tls });
    for (let i = 0; i < 2; i++) nodes.push(await startHerald({ redisUrl: redis.url, env: { HERALD_REDIS_CA_FILE: pki.ca.cert } }));
  });
  after(async () => {
    await closeClients();
    for (const h of nodes) if (h.alive()) await h.stop();
    await redis?.stop();
    pki?.remove();
  });

  e2e('presence and broadcasts over TLS, Laravel publishing to the primary, and a failover followed', async () => {
    const a = await rawClient(nodes[0].port);
    const b = await rawClient(nodes[1].port);
    await a.subscribePresence('presence-tls', 'ann', 'Ann');
    await b.subscribePresence('presence-tls', 'bob', 'Bob');
    await a.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === 'bob');
    await a.subscribeOk('news');
    await b.subscribeOk('news');
    const laravel = async (phase) => {
      await laravelBroadcast(await redis.primaryPort(), {
        channels: [{ type: 'public', name: 'news' }],
        data: { phase },
        redis: { scheme: 'tls', password: tls.password, context: { stream: { cafile: pki.ca.cert, peer_name: 'localhost' } } },
      });
      for (const c of [a, b]) await c.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).phase === phase);
    };
    await laravel('before');

    const oldPrimary = redis.primary.port;
    redis.primary.kill9();
    await waitFor(async () => (await redis.primaryPort()) !== oldPrimary, { timeout: 30000, what: 'the sentinels to promote the replica' });
    await waitFor(async () => (await Promise.all(nodes.map((n) => readyzStatus(n.port)))).every((st) => st === 200),
      { timeout: 30000, what: 'both nodes ready on the new primary' });
    await laravel('after');
    await pusherServer(nodes[0].port).trigger('news', 'api', { n: 1 });
    for (const c of [a, b]) await c.next((f) => f.event === 'api' && dataOf(f).n === 1);
    assert.ok(a.isOpen() && b.isOpen(), 'the clients stayed connected');
    const res = await pusherServer(nodes[1].port).get({ path: '/channels/presence-tls/users' });
    assert.deepEqual((await res.json()).users.map((u) => u.id).sort(), ['ann', 'bob']);
  }, { timeout: 90000 });

  e2e('a wrong sentinel password keeps a node unready, and the log says so without the password', async () => {
    const url = redis.url.replace(`sentinel_password=${tls.sentinelPassword}`, 'sentinel_password=wrong-one');
    const wrong = await startHerald({ redisUrl: url, env: { HERALD_REDIS_CA_FILE: pki.ca.cert }, waitReady: false });
    await waitFor(() => /sentinels name no reachable Redis primary/.test(wrong.logs()), { timeout: 10000, what: 'the log line' });
    assert.equal(await readyzStatus(wrong.port), 503);
    assert.doesNotMatch(wrong.logs(), /wrong-one|primary-secret-1/, 'no password in the log');
    await wrong.stop();
  });
});
