// A node cut off from Redis (a TCP proxy between it and Redis drops and black-holes the link): a blip
// shorter than HERALD_ISOLATION_TIMEOUT_MS keeps every client; a longer one makes the node let its clients go
// with 4100 and refuse new ones, pusher-js reconnects through haproxy to the healthy nodes, and the other
// users see each moved user leave once and come back once, never twice, also after the link heals.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, closeClients, rawClient, dataOf, expectNothing, waitFor, pusherServer, makeEcho,
  echoConnected, echoSubscribed, startRedis, startHerald, readyzStatus, httpGet,
} from '../lib/harness.mjs';
import { startHaproxy } from '../lib/cluster.mjs';
import { linkProxy } from '../lib/link_proxy.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';
const LEASE_MS = 1000;
const ENV = { HERALD_ISOLATION_TIMEOUT_MS: '2500', HERALD_LEASE_MS: String(LEASE_MS), HERALD_DRAIN_SECS: '1' };

const memberEvents = (client, channel) => client.all((f) => f.channel === channel
  && (f.event === 'pusher_internal:member_added' || f.event === 'pusher_internal:member_removed'))
  .map((f) => `${f.event === 'pusher_internal:member_added' ? '+' : '-'}${dataOf(f).user_id}`);

async function connectionsOn(node) {
  const res = await httpGet(node.port, '/metrics');
  const line = res.body.split('\n').find((l) => l.startsWith('herald_connections{'));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('a node cut off from Redis', { skip }, () => {
  let redis; let link; let isolated; let healthy; let lb;
  before(async () => {
    redis = await startRedis();
    link = await linkProxy(redis.port);
    isolated = await startHerald({ redisUrl: link.url, env: ENV });
    healthy = [await startHerald({ redisUrl: redis.url, env: ENV }), await startHerald({ redisUrl: redis.url, env: ENV })];
    lb = await startHaproxy([isolated.port, ...healthy.map((h) => h.port)]);
  });
  after(async () => {
    await closeClients();
    await lb?.stop();
    for (const h of [isolated, ...(healthy ?? [])]) if (h?.alive()) await h.stop();
    await link?.close();
    await redis?.stop();
  });
  autoCloseClients();

  e2e('a blip shorter than the isolation timeout keeps every client', async () => {
    const client = await rawClient(isolated.port);
    await client.subscribeOk('news');
    link.cut();
    await waitFor(async () => (await readyzStatus(isolated.port)) === 503, { timeout: 5000, what: 'the cut node to turn unready' });
    // The fault itself: the link stays down for a second, well under the 2.5 s isolation timeout.
    await new Promise((r) => setTimeout(r, 1000));
    link.heal();
    await waitFor(async () => (await readyzStatus(isolated.port)) === 200, { timeout: 10000, what: 'the node to be ready again' });
    assert.ok(client.isOpen(), `the client was closed: ${client.closeCode} ${client.closeReason}`);
    await pusherServer(healthy[0].port).trigger('news', 'after-blip', { n: 1 });
    await client.next('after-blip');
    assert.match(isolated.logs(), /Redis/);
    assert.doesNotMatch(isolated.logs(), /cut off from Redis longer than HERALD_ISOLATION_TIMEOUT_MS/);
  }, { timeout: 30000 });

  e2e('an isolated node lets its clients go (4100), refuses new ones, and each moved user leaves once and returns once', async () => {
    const channel = 'presence-lobby';
    const watcher = await rawClient(healthy[0].port);
    await watcher.subscribePresence(channel, 'watcher', 'W');
    const stranded = await rawClient(isolated.port);
    await stranded.subscribePresence(channel, 'stranded', 'S');
    // Six browsers behind the load balancer: round robin puts two on each node.
    const users = [];
    for (let i = 1; i <= 6; i++) {
      const echo = makeEcho({ port: lb.port, userId: `u${i}`, userName: `U${i}` });
      await echoConnected(echo);
      await echoSubscribed(echo.join('lobby'));
      users.push(echo);
    }
    await waitFor(() => memberEvents(watcher, channel).length === 7, { timeout: 5000, what: 'seven joins seen by the watcher' });
    const onIsolated = await connectionsOn(isolated);
    assert.ok(onIsolated >= 2, `expected clients on the node to be cut off, found ${onIsolated}`);
    const before = users.map((e) => e.states.length);

    link.cut();
    const closed = await stranded.waitClosed(10000);
    assert.equal(closed.code, 4100, `close code: ${closed.code} ${closed.reason}`);
    assert.match(String(closed.reason), /Redis/);
    const refused = await rawClient(isolated.port, undefined, undefined, { established: false });
    const refusal = await refused.waitClosed(5000);
    assert.equal(refusal.code, 4100);
    assert.match(isolated.logs(), /cut off from Redis longer than HERALD_ISOLATION_TIMEOUT_MS/);

    // The browsers that were on the cut node reconnect elsewhere and join again.
    const letGo = () => users.map((e, i) => (e.states.slice(before[i]).includes('connecting') ? `u${i + 1}` : null)).filter(Boolean);
    await waitFor(() => letGo().length === onIsolated - 1, { timeout: 10000, what: 'every browser on the cut node to be let go' });
    for (const echo of users) await echoConnected(echo, 15000);
    const movedIds = letGo();
    assert.equal(movedIds.length, onIsolated - 1, `only the browsers on the cut node were let go: ${movedIds}`);
    await waitFor(() => movedIds.every((id) => memberEvents(watcher, channel).includes(`+${id}`)
      && memberEvents(watcher, channel).lastIndexOf(`+${id}`) > memberEvents(watcher, channel).indexOf(`-${id}`)),
    { timeout: 15000, what: `the moved users ${movedIds} to leave and join again; seen ${memberEvents(watcher, channel)}` });

    link.heal();
    await waitFor(async () => (await readyzStatus(isolated.port)) === 200, { timeout: 10000, what: 'the node to be ready again' });
    const again = await rawClient(isolated.port);
    await again.subscribeOk('news');
    // Several leases after the link healed (re-registration, retried leaves, reaps): nothing more is announced.
    await expectNothing(LEASE_MS * 4);

    const events = memberEvents(watcher, channel).slice(7);
    for (let i = 1; i <= 6; i++) {
      const id = `u${i}`;
      const mine = events.filter((e) => e.slice(1) === id);
      assert.deepEqual(mine, movedIds.includes(id) ? [`-${id}`, `+${id}`] : [], `events about ${id}: ${events}`);
    }
    assert.deepEqual(events.filter((e) => e.slice(1) === 'stranded'), ['-stranded'], `events: ${events}`);
    for (const node of [isolated, ...healthy]) {
      const res = await pusherServer(node.port).get({ path: `/channels/${channel}/users` });
      const ids = (await res.json()).users.map((u) => u.id).sort();
      assert.deepEqual(ids, ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'watcher'], `users seen by :${node.port}`);
    }
  }, { timeout: 60000 });
});

describe('a node paused with SIGSTOP', { skip }, () => {
  let redis; let paused; let other;
  before(async () => {
    redis = await startRedis();
    paused = await startHerald({ redisUrl: redis.url });
    other = await startHerald({ redisUrl: redis.url });
  });
  after(async () => {
    try { process.kill(paused?.pid, 'SIGCONT'); } catch { /* gone */ }
    await closeClients();
    for (const h of [paused, other]) if (h?.alive()) await h.stop();
    await redis?.stop();
  });
  autoCloseClients();

  e2e('delivers, once each, what reached its Redis subscription while it was paused longer than the heartbeat deadline', async () => {
    const client = await rawClient(paused.port);
    await client.subscribeOk('news');
    await client.subscribePresence('presence-paused', 'stays', 'S');
    process.kill(paused.pid, 'SIGSTOP');
    try {
      const api = pusherServer(other.port);
      for (let n = 1; n <= 5; n++) await api.trigger('news', 'while-paused', { n });
      const joiner = await rawClient(other.port);
      await joiner.subscribePresence('presence-paused', 'joiner', 'J');
      // The fault: the node stays frozen past its 5 s heartbeat deadline and its 2 s lease.
      await new Promise((r) => setTimeout(r, 7000));
    } finally {
      process.kill(paused.pid, 'SIGCONT');
    }
    await waitFor(() => client.all('while-paused').length === 5, { timeout: 10000, what: 'the five events queued during the pause' });
    await pusherServer(other.port).trigger('news', 'after-pause', {});
    await client.next('after-pause', 10000);
    await waitFor(async () => (await readyzStatus(paused.port)) === 200, { timeout: 10000, what: 'the node to be ready again' });
    await expectNothing(1500);
    assert.deepEqual(client.all('while-paused').map((f) => dataOf(f).n), [1, 2, 3, 4, 5], 'each once, in order');
    const joins = client.all((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === 'joiner');
    assert.equal(joins.length, 1, `member_added for the joiner: ${joins.length}`);
  }, { timeout: 45000 });
});
