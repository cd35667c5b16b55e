// The failover scene the Sentinel and Redis Cluster tests share: clients on every node in a public and a
// presence channel, HTTP API events flowing through every node while Redis fails over, and what a user must
// see afterwards (nothing lost once the nodes are ready again, nobody disconnected, presence unchanged, and a
// dead Herald node still reaped).
import assert from 'node:assert/strict';
import {
  rawClient, dataOf, waitFor, pusherServer, readyzStatus, makeEcho, echoConnected, echoSubscribed,
} from './harness.mjs';

const memberEvents = (client) => client.all((f) => f.event === 'pusher_internal:member_added' || f.event === 'pusher_internal:member_removed');

/** The users of a presence channel as one node's HTTP API lists them. */
export async function presenceUsers(node, channel) {
  const res = await pusherServer(node.port).get({ path: `/channels/${channel}/users` });
  return (await res.json()).users.map((u) => u.id).sort();
}

/**
 * A raw client per node in `channel` and in presence-ha (user u{i}), and pusher-js (user `echo`) on node 1 in
 * presence-ha; resolves once every join was seen.
 */
export async function presenceScene(nodes, channel) {
  const watchers = [];
  for (const [i, node] of nodes.entries()) {
    const w = await rawClient(node.port);
    await w.subscribeOk(channel);
    await w.subscribePresence('presence-ha', `u${i}`, `U${i}`);
    watchers.push(w);
  }
  const echo = makeEcho({ port: nodes[1].port, userId: 'echo', userName: 'E' });
  await echoConnected(echo);
  await echoSubscribed(echo.join('ha'));
  // Watcher i hears the users who joined after it: the later watchers and the pusher-js client.
  await waitFor(() => watchers.every((w, i) => memberEvents(w).length === nodes.length - i), { timeout: 5000, what: 'the joins seen by every watcher' });
  return { channel, watchers, echo, joinsBefore: watchers.map((w) => memberEvents(w).length), echoStates: echo.states.length };
}

/**
 * Streams HTTP API events on the scene's channel through every node, ten a second; once they flow, runs
 * `disrupt()`, then waits for 20 events accepted after it and for every watcher to receive the last one.
 * Resolves to { accepted, refused, firstAfter, lost }: `firstAfter` is the first event sent after `disrupt()`
 * resolved, and `lost` holds, per watcher, the accepted events it never received.
 */
export async function trafficThrough(nodes, scene, what, disrupt) {
  const accepted = [];
  let seq = 0;
  const flow = setInterval(() => {
    const n = ++seq;
    pusherServer(nodes[n % nodes.length].port).trigger(scene.channel, 'tick', { n }).then(() => accepted.push(n), () => {});
  }, 100);
  try {
    await waitFor(() => accepted.length >= 10, { timeout: 5000, what: 'events flowing' });
    await disrupt();
    const firstAfter = seq + 1;
    await waitFor(() => accepted.filter((n) => n >= firstAfter).length >= 20, { timeout: 15000, what: `events accepted after ${what}` });
    clearInterval(flow);
    const last = Math.max(...accepted);
    for (const w of scene.watchers) await w.next((f) => f.event === 'tick' && dataOf(f).n === last, 10000);
    const lost = scene.watchers.map((w) => {
      const got = new Set(w.all('tick').map((f) => dataOf(f).n));
      return accepted.filter((n) => !got.has(n));
    });
    return { accepted, refused: seq - accepted.length, firstAfter, lost };
  } finally {
    clearInterval(flow);
  }
}

/**
 * Events flow (`trafficThrough`) while `failover()` breaks Redis and resolves once Redis has promoted a
 * replica; then waits for every node to be ready, prints the gap and the events lost in it, and asserts that
 * nothing accepted after that was lost.
 */
export async function failoverUnderTraffic(nodes, scene, label, failover) {
  let killed;
  let promotedAt;
  let readyAt;
  const { accepted, refused, firstAfter, lost } = await trafficThrough(nodes, scene, 'the failover', async () => {
    killed = Date.now();
    await failover();
    promotedAt = Date.now();
    await waitFor(async () => (await Promise.all(nodes.map((n) => readyzStatus(n.port)))).every((s) => s === 200),
      { timeout: 30000, what: 'every node ready after the failover' });
    readyAt = Date.now();
  });
  console.log(`# ${label}: replica promoted ${promotedAt - killed} ms after the kill, nodes ready at ${readyAt - killed} ms; `
    + `accepted ${accepted.length} events, lost per watcher ${lost.map((l) => l.length).join('/')}; refused (not 200) ${refused}`);
  for (const l of lost) assert.deepEqual(l.filter((n) => n >= firstAfter), [], 'nothing accepted after the failover is lost');
}

/** Everyone stayed connected, every node lists the same members, and nobody heard a member event. */
export async function assertSceneIntact(nodes, scene) {
  assert.ok(scene.watchers.every((w) => w.isOpen()), 'the raw clients stayed connected');
  assert.ok(!scene.echo.states.slice(scene.echoStates).includes('connecting'), `pusher-js stayed connected: ${scene.echo.states}`);
  const all = ['echo', ...nodes.map((_, i) => `u${i}`)].sort();
  for (const node of nodes) assert.deepEqual(await presenceUsers(node, 'presence-ha'), all, `users on :${node.port}`);
  scene.watchers.forEach((w, i) => assert.equal(memberEvents(w).length, scene.joinsBefore[i],
    `no member event during the failover at watcher ${i}: ${JSON.stringify(memberEvents(w))}`));
}

/** kill -9 the last node: the others' watchers hear its user leave within 6 s. */
export async function assertDeadNodeReaped(nodes, scene) {
  const killedNode = Date.now();
  const last = nodes.length - 1;
  await nodes[last].kill9();
  for (const w of scene.watchers.slice(0, last)) {
    await w.next((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === `u${last}`, 8000);
  }
  console.log(`# a node killed after the failover was reaped in ${Date.now() - killedNode} ms`);
  assert.ok(Date.now() - killedNode < 6000);
}
