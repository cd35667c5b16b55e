// Redis behind Sentinel (one primary, one replica, three sentinels, all real): three Herald nodes follow a
// failover by themselves. The primary is killed -9 while HTTP API events flow and clients sit in a presence
// channel: clients stay connected, delivery resumes (the test prints the gap and the events lost in it),
// presence lists stay right with no member event, Laravel's RedisBroadcaster reaches the new primary, and a
// Herald node killed afterwards is still reaped within seconds.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, closeClients, rawClient, dataOf, waitFor, pusherServer, startHerald, readyzStatus, makeEcho, echoConnected,
  echoSubscribed,
} from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';
import { startSentinelRedis } from '../lib/sentinel.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';
const memberEvents = (client) => client.all((f) => f.event === 'pusher_internal:member_added' || f.event === 'pusher_internal:member_removed');

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
    const watchers = [];
    for (const [i, node] of nodes.entries()) {
      const w = await rawClient(node.port);
      await w.subscribeOk('ha');
      await w.subscribePresence('presence-ha', `u${i}`, `U${i}`);
      watchers.push(w);
    }
    const echo = makeEcho({ port: nodes[1].port, userId: 'echo', userName: 'E' });
    await echoConnected(echo);
    await echoSubscribed(echo.join('ha'));
    // Watcher i hears the users who joined after it: the later watchers and the pusher-js client.
    await waitFor(() => watchers.every((w, i) => memberEvents(w).length === 3 - i), { timeout: 5000, what: 'the joins seen by every watcher' });
    const joinsBefore = watchers.map((w) => memberEvents(w).length);
    const echoStates = echo.states.length;

    await laravelBroadcast(await redis.primaryPort(), { channels: [{ type: 'public', name: 'ha' }], data: { phase: 'before' } });
    for (const w of watchers) await w.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).phase === 'before');

    // Events flow through the HTTP API of every node, ten a second; only those answered 200 count as accepted.
    const accepted = [];
    let seq = 0;
    const flow = setInterval(() => {
      const n = ++seq;
      pusherServer(nodes[n % 3].port).trigger('ha', 'tick', { n }).then(() => accepted.push(n), () => {});
    }, 100);
    try {
      await waitFor(() => accepted.length >= 10, { timeout: 5000, what: 'events flowing' });
      const oldPrimary = redis.primary.port;
      redis.primary.kill9();
      const killed = Date.now();
      await waitFor(async () => (await redis.primaryPort()) !== oldPrimary, { timeout: 30000, what: 'the sentinels to promote the replica' });
      await waitFor(async () => (await Promise.all(nodes.map((n) => readyzStatus(n.port)))).every((s) => s === 200),
        { timeout: 30000, what: 'every node ready on the new primary' });
      const readyAt = Date.now();
      const firstAfter = seq + 1;
      await waitFor(() => accepted.filter((n) => n >= firstAfter).length >= 20, { timeout: 15000, what: 'events accepted after the failover' });
      clearInterval(flow);
      const last = Math.max(...accepted);
      for (const w of watchers) await w.next((f) => f.event === 'tick' && dataOf(f).n === last, 10000);
      const lost = watchers.map((w) => {
        const got = new Set(w.all('tick').map((f) => dataOf(f).n));
        return accepted.filter((n) => !got.has(n));
      });
      console.log(`# failover: nodes ready ${readyAt - killed} ms after the kill; accepted ${accepted.length} events, `
        + `lost per watcher ${lost.map((l) => l.length).join('/')}; refused (not 200) ${seq - accepted.length}`);
      for (const l of lost) assert.deepEqual(l.filter((n) => n >= firstAfter), [], 'nothing accepted after the failover is lost');
    } finally {
      clearInterval(flow);
    }

    assert.ok(watchers.every((w) => w.isOpen()), 'the raw clients stayed connected');
    assert.ok(!echo.states.slice(echoStates).includes('connecting'), `pusher-js stayed connected: ${echo.states}`);
    await laravelBroadcast(await redis.primaryPort(), { channels: [{ type: 'public', name: 'ha' }], data: { phase: 'after' } });
    for (const w of watchers) await w.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).phase === 'after');
    for (const node of nodes) {
      const res = await pusherServer(node.port).get({ path: '/channels/presence-ha/users' });
      assert.deepEqual((await res.json()).users.map((u) => u.id).sort(), ['echo', 'u0', 'u1', 'u2'], `users on :${node.port}`);
    }
    watchers.forEach((w, i) => assert.equal(memberEvents(w).length, joinsBefore[i], `no member event during the failover at watcher ${i}: ${JSON.stringify(memberEvents(w))}`));

    const killedNode = Date.now();
    await nodes[2].kill9();
    for (const w of watchers.slice(0, 2)) {
      await w.next((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === 'u2', 8000);
    }
    console.log(`# a node killed after the failover was reaped in ${Date.now() - killedNode} ms`);
    assert.ok(Date.now() - killedNode < 6000);
  }, { timeout: 120000 });
});
