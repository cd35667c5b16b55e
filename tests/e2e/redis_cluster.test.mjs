// Redis Cluster (three primaries, three replicas, all real): three Herald nodes keep every script in one slot,
// carry Herald's channels on sharded pub/sub and Laravel's on classic pub/sub, and follow a shard's failover by
// themselves. The primary holding the node leases is killed -9 while HTTP API events flow and clients sit in a
// presence channel: clients stay connected, delivery resumes (the test prints the gap and the events lost in
// it), presence lists stay right with no member event, Laravel's RedisBroadcaster still reaches every node,
// and a Herald node killed afterwards is still reaped within seconds.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, closeClients, rawClient, dataOf, waitFor, pusherServer, startHerald, APP_ID,
} from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';
import { startRedisCluster } from '../lib/redis_cluster.mjs';
import {
  presenceScene, failoverUnderTraffic, assertSceneIntact, assertDeadNodeReaped, presenceUsers,
} from '../lib/failover.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

/** A channel name, `base` with a number, whose Herald channel lives on the primary on `port`. */
async function channelOn(redis, port, base) {
  for (let i = 0; i < 200; i++) {
    if (await redis.ownerOf(`herald:${APP_ID}:c:${base}-${i}`) === port) return `${base}-${i}`;
  }
  throw new Error(`no channel name found on :${port}`);
}

describe('Redis Cluster', { skip }, () => {
  let redis;
  const nodes = [];
  before(async () => {
    redis = await startRedisCluster();
    for (let i = 0; i < 3; i++) nodes.push(await startHerald({ redisUrl: redis.url }));
  });
  after(async () => {
    await closeClients();
    for (const h of nodes) if (h.alive()) await h.stop();
    await redis?.stop();
  });

  e2e('broadcasts, presence and counts across three nodes, with each script in one slot', async () => {
    const a = await rawClient(nodes[0].port);
    const b = await rawClient(nodes[2].port);
    await a.subscribeOk('orders');
    await b.subscribeOk('orders');
    await a.subscribePresence('presence-room', 'ann', 'Ann');
    const joined = await b.subscribePresence('presence-room', 'bob', 'Bob');
    assert.deepEqual(Object.keys(JSON.parse(joined.data).presence.hash).sort(), ['ann', 'bob']);
    await a.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === 'bob');

    // Laravel publishes with PUBLISH into one cluster node; every Herald node hears it.
    await laravelBroadcast(redis.anyPort(), { channels: [{ type: 'public', name: 'orders' }], data: { n: 1 } });
    for (const c of [a, b]) await c.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).n === 1);
    // The HTTP API of the third node publishes on the sharded channel.
    await pusherServer(nodes[1].port).trigger('orders', 'api', { n: 2 });
    for (const c of [a, b]) await c.next((f) => f.event === 'api' && dataOf(f).n === 2);

    // The keys carry hash tags: a presence channel's keys and an app's counts each live in one slot.
    const usersKey = `herald:{${APP_ID}:presence-room}:presence:users`;
    const owner = await redis.ownerOf(usersKey);
    assert.deepEqual((await redis.cli(owner, 'hkeys', usersKey)).split('\n').sort(), ['ann', 'bob']);
    for (const node of nodes) {
      assert.deepEqual(await presenceUsers(node, 'presence-room'), ['ann', 'bob'], `users on :${node.port}`);
      const res = await pusherServer(node.port).get({ path: '/channels/orders', params: { info: 'subscription_count' } });
      assert.equal((await res.json()).subscription_count, 2, `subscriptions counted cluster-wide on :${node.port}`);
    }
    b.close();
    await a.next((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === 'bob');
    a.close();
    await waitFor(async () => {
      const res = await pusherServer(nodes[1].port).get({ path: '/channels' });
      return Object.keys((await res.json()).channels).length === 0;
    }, { timeout: 5000, what: 'no channel left counted' });
  });

  e2e('a failover of the shard holding the leases and the channel: clients stay, delivery resumes, presence stays right, a dead node is still reaped', async () => {
    // A channel whose sharded Redis channel lives on the shard of the node leases: one kill takes both.
    const leases = 'herald:{cluster}:nodes';
    const oldOwner = await redis.ownerOf(leases);
    const scene = await presenceScene(nodes, await channelOn(redis, oldOwner, 'ha'));

    await failoverUnderTraffic(nodes, scene, 'cluster failover of the shard holding the leases and the channel', async () => {
      redis.kill9(oldOwner);
      await waitFor(async () => {
        const now = await redis.ownerOf(leases);
        return now !== null && now !== oldOwner;
      }, { timeout: 30000, what: 'a replica promoted for the leases shard' });
    });

    await laravelBroadcast(redis.anyPort(), { channels: [{ type: 'public', name: scene.channel }], data: { phase: 'after' } });
    for (const w of scene.watchers) await w.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).phase === 'after');
    await assertSceneIntact(nodes, scene);
    await assertDeadNodeReaped(nodes, scene);
    for (const node of nodes.slice(0, 2)) {
      assert.deepEqual(await presenceUsers(node, 'presence-ha'), ['echo', 'u0', 'u1'], `users on :${node.port} after the reap`);
    }
  }, { timeout: 120000 });
});
