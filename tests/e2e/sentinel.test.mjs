// Redis behind Sentinel (one primary, one replica, three sentinels, all real): three Herald nodes follow a
// failover by themselves. The primary is killed -9 while HTTP API events flow and clients sit in a presence
// channel: clients stay connected, delivery resumes (the test prints the gap and the events lost in it),
// presence lists stay right with no member event, Laravel's RedisBroadcaster reaches the new primary, and a
// Herald node killed afterwards is still reaped within seconds.
import { describe, before, after } from 'node:test';
import { e2e, closeClients, dataOf, waitFor, startHerald } from '../lib/harness.mjs';
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
