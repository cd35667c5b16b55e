// Redis Cluster (three primaries, three replicas, all real): three Herald nodes keep every script in one slot,
// carry Herald's channels on sharded pub/sub and Laravel's on classic pub/sub, and follow a shard's failover by
// themselves. The primary holding the node leases is killed -9 while HTTP API events flow and clients sit in a
// presence channel: clients stay connected, delivery resumes (the test prints the gap and the events lost in
// it), presence lists stay right with no member event, Laravel's RedisBroadcaster still reaches every node,
// and a Herald node killed afterwards is still reaped within seconds.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, closeClients, rawClient, dataOf, waitFor, pusherServer, startHerald, readyzStatus, httpGet, APP_ID, APP_KEY,
  APP_SECRET, HERALD_BIN,
} from '../lib/harness.mjs';
import { startReceiver } from '../lib/webhook_receiver.mjs';
import { makePki } from '../lib/tls.mjs';
import { execFile } from 'node:child_process';
import { laravelBroadcast } from '../lib/laravel.mjs';
import { startRedisCluster } from '../lib/redis_cluster.mjs';
import {
  presenceScene, failoverUnderTraffic, trafficThrough, assertSceneIntact, assertDeadNodeReaped, presenceUsers,
} from '../lib/failover.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

/** `herald check` with a running node's settings: its output, whatever its exit code. */
function cliCheck(node) {
  return new Promise((resolve) => {
    execFile(HERALD_BIN, ['check'], { env: node.env, timeout: 15000 }, (err, stdout, stderr) => resolve({ stdout: `${stdout}${stderr}` }));
  });
}

/** A channel name, `base` with a number, whose Herald channel lives on the primary on `port`. */
async function channelOn(redis, port, base) {
  for (let i = 0; i < 200; i++) {
    if (await redis.ownerOf(`herald:${APP_ID}:c:${base}-${i}`) === port) return `${base}-${i}`;
  }
  throw new Error(`no channel name found on :${port}`);
}

describe('Redis Cluster', { skip }, () => {
  let redis;
  let hooks;
  const nodes = [];
  before(async () => {
    hooks = await startReceiver({ secret: APP_SECRET, key: APP_KEY });
    redis = await startRedisCluster();
    for (let i = 0; i < 3; i++) nodes.push(await startHerald({ redisUrl: redis.url, env: { HERALD_WEBHOOK_URL: hooks.url } }));
  });
  after(async () => {
    await closeClients();
    for (const h of nodes) if (h.alive()) await h.stop();
    await redis?.stop();
    await hooks?.close();
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

  e2e('webhooks once for the whole cluster, and cache channels, on Redis Cluster', async () => {
    const named = (name, channel) => (e) => e.name === name && e.channel === channel;
    const a = await rawClient(nodes[0].port);
    await a.subscribeOk('hooked');
    await hooks.waitEvent(named('channel_occupied', 'hooked'), 'channel_occupied');
    const b = await rawClient(nodes[1].port);
    await b.subscribeOk('hooked');
    await a.close();
    await b.close();
    await hooks.waitEvent(named('channel_vacated', 'hooked'), 'channel_vacated');
    // One user in two tabs on two nodes: member_added once.
    const t1 = await rawClient(nodes[0].port);
    await t1.subscribePresence('presence-hooks', 7, 'Ada');
    const t2 = await rawClient(nodes[2].port);
    await t2.subscribePresence('presence-hooks', 7, 'Ada');
    await hooks.waitEvent((e) => e.name === 'member_added' && e.user_id === '7', 'member_added');
    // A Laravel broadcast on a cache channel nobody watches is kept; a late subscriber on any node gets it.
    await laravelBroadcast(redis.anyPort(), { channels: [{ type: 'public', name: 'cache-prices' }], data: { eur: 3 } });
    await waitFor(async () => {
      const probe = await rawClient(nodes[1].port);
      await probe.subscribeOk('cache-prices');
      const first = await probe.next((f) => f.channel === 'cache-prices', 2000);
      await probe.close();
      return first.event === 'App\\Events\\OrderShipped' && dataOf(first).eur === 3;
    }, { timeout: 10000, interval: 100, what: 'the cache channel\'s last event' });
    await t1.close();
    await t2.close();
    await hooks.waitEvent((e) => e.name === 'member_removed' && e.user_id === '7', 'member_removed');
    const marker = await rawClient(nodes[2].port);
    await marker.subscribeOk('hooked-marker');
    await hooks.waitEvent(named('channel_occupied', 'hooked-marker'), 'the marker');
    await marker.close();
    assert.equal(hooks.count(named('channel_occupied', 'hooked')), 1);
    assert.equal(hooks.count(named('channel_vacated', 'hooked')), 1);
    assert.equal(hooks.count((e) => e.name === 'member_added' && e.user_id === '7'), 1);
    assert.ok(hooks.received.every((r) => r.validSignature), 'every request signed with the app secret');
  });

  e2e('a slot migration during delivery: the channel and the presence keys move shard, delivery and presence follow', async () => {
    const scene = await presenceScene(nodes, 'moving');
    let moved;
    let took;
    const { accepted, refused, firstAfter, lost } = await trafficThrough(nodes, scene, 'the migration', async () => {
      const channelKey = `herald:${APP_ID}:c:${scene.channel}`;
      const presenceKey = `herald:{${APP_ID}:presence-ha}:presence:users`;
      const primaries = (await redis.primaries()).map((p) => p.port);
      const from = await redis.ownerOf(channelKey);
      const to = primaries.find((p) => p !== from);
      const started = Date.now();
      moved = [await redis.moveSlot(channelKey, to), await redis.moveSlot(presenceKey, primaries.find((p) => p !== to && p !== from) ?? to)];
      took = Date.now() - started;
    });
    console.log(`# slot migration (slots ${moved.map((m) => `${m.slot} :${m.from}->:${m.to}`).join(', ')}) took ${took} ms; `
      + `accepted ${accepted.length} events, lost per watcher ${lost.map((l) => l.length).join('/')}; refused (not 200) ${refused}`);
    // Only in the moment between the slot's move and the nodes' new SSUBSCRIBE (Redis tells them at once).
    for (const l of lost) assert.deepEqual(l.filter((n) => n >= firstAfter + 10), [], 'nothing lost a second after the move');
    await assertSceneIntact(nodes, scene);
    // The moved presence channel still decides first and last connections for the whole cluster.
    const late = await rawClient(nodes[2].port);
    await late.subscribePresence('presence-ha', 'late', 'L');
    for (const w of scene.watchers.slice(0, 2)) await w.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === 'late');
    late.close();
    for (const w of scene.watchers.slice(0, 2)) await w.next((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === 'late');
    for (const w of scene.watchers) w.close();
    scene.echo.disconnect();
  }, { timeout: 120000 });

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
    // What an SRE's dashboard shows: the failover seen, and which primaries the node writes to.
    const { body: metrics } = await httpGet(nodes[0].port, '/metrics');
    assert.match(metrics, /^herald_redis_failovers_total [1-9]/m);
    assert.match(metrics, new RegExp(`^herald_redis_primary\\{address="127\\.0\\.0\\.1:${oldOwner}"\\} 0$`, 'm'), 'the killed primary marked 0');
    assert.equal((metrics.match(/^herald_redis_primary\{[^}]*\} 1$/gm) ?? []).length, 3, 'three primaries in use');
    assert.match(metrics, /^herald_redis_cluster_primaries 3$/m);
    // The sharded channels were subscribed again; or, when this node's classic connection went to the killed
    // node (each node picks one at random), the whole link was made again.
    assert.match(metrics, /^(herald_redis_subscription_repairs_total|herald_redis_reconnects_total) [1-9]/m);
    await assertDeadNodeReaped(nodes, scene);
    for (const node of nodes.slice(0, 2)) {
      assert.deepEqual(await presenceUsers(node, 'presence-ha'), ['echo', 'u0', 'u1'], `users on :${node.port} after the reap`);
    }
  }, { timeout: 120000 });
});

describe('Redis Cluster over TLS with an ACL user (rediss+cluster://)', { skip }, () => {
  const PASSWORD = 'cluster-secret-42';
  let pki;
  let redis;
  const nodes = [];
  before(async () => {
    pki = makePki();
    redis = await startRedisCluster({
      replicas: 0,
      tls: { ca: pki.ca.cert, cert: pki.server.cert, key: pki.server.key, user: 'herald', password: PASSWORD },
    });
    for (let i = 0; i < 2; i++) {
      nodes.push(await startHerald({ redisUrl: redis.url, env: { HERALD_REDIS_CA_FILE: pki.ca.cert } }));
    }
  });
  after(async () => {
    await closeClients();
    for (const h of nodes) if (h.alive()) await h.stop();
    await redis?.stop();
    pki?.remove();
  });

  e2e('two nodes share presence and broadcasts; Laravel publishes over TLS as the ACL user', async () => {
    const a = await rawClient(nodes[0].port);
    const b = await rawClient(nodes[1].port);
    await a.subscribePresence('presence-tls', 'ann', 'Ann');
    const joined = await b.subscribePresence('presence-tls', 'bob', 'Bob');
    assert.deepEqual(Object.keys(JSON.parse(joined.data).presence.hash).sort(), ['ann', 'bob']);
    await a.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === 'bob');
    await a.subscribeOk('news');
    await b.subscribeOk('news');
    await pusherServer(nodes[0].port).trigger('news', 'api', { n: 1 });
    for (const c of [a, b]) await c.next((f) => f.event === 'api' && dataOf(f).n === 1);
    await laravelBroadcast(redis.anyPort(), {
      channels: [{ type: 'public', name: 'news' }],
      data: { id: 7 },
      redis: { scheme: 'tls', password: ['herald', PASSWORD], context: { stream: { cafile: pki.ca.cert, peer_name: 'localhost' } } },
    });
    for (const c of [a, b]) assert.equal(dataOf(await c.next((f) => f.event === 'App\\Events\\OrderShipped')).id, 7);
    const { stdout } = await cliCheck(nodes[0]);
    assert.match(stdout, /Redis Cluster .*: Redis 7[.\d]*, 3 primaries/);
  });

  e2e('a node given the wrong CA stays unready and says why', async () => {
    const wrong = await startHerald({ redisUrl: redis.url, env: { HERALD_REDIS_CA_FILE: pki.otherCa.cert }, waitReady: false });
    await waitFor(() => /cannot connect to Redis for pub\/sub/.test(wrong.logs()), { timeout: 10000, what: 'the connection error in the log' });
    assert.equal(await readyzStatus(wrong.port), 503);
    assert.doesNotMatch(wrong.logs(), new RegExp(PASSWORD), 'the password is never logged');
    await wrong.stop();
  });
});
