// Three nodes on one Redis behind haproxy: delivery exactly once across nodes, toOthers across nodes,
// presence shared through Redis (one member per user across tabs on different nodes), a SIGKILLed node's
// members removed within seconds, recovery after Redis restarts empty, and two apps kept apart.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, closeClients, rawClient, dataOf, expectNothing, waitFor, pusherServer,
  makeEcho, echoSubscribed, recorder, startHerald, APP_KEY,
} from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';
import { startCluster } from '../lib/cluster.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

const ids = (frame) => dataOf(frame).presence.ids.slice().sort();
const memberEvents = (client, channel) => client.all((f) => f.channel === channel
  && (f.event === 'pusher_internal:member_added' || f.event === 'pusher_internal:member_removed'));

describe('cluster of three nodes', { skip }, () => {
  let cluster;
  before(async () => { cluster = await startCluster({ n: 3 }); });
  after(async () => { await closeClients(); await cluster?.stop(); });
  autoCloseClients();

  const port = (i) => cluster.nodes[i].port;

  e2e('a Laravel broadcast reaches clients on all three nodes exactly once', async () => {
    const clients = await Promise.all([0, 1, 2].map((i) => rawClient(port(i))));
    for (const c of clients) await c.subscribeOk('orders');
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'public', name: 'orders' }], data: { n: 1 } });
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'public', name: 'orders' }], data: { n: 2 } });
    for (const c of clients) {
      await c.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).n === 2);
      const got = c.all((f) => f.event === 'App\\Events\\OrderShipped').map((f) => dataOf(f).n);
      assert.deepEqual(got, [1, 2], `each event exactly once, in order, on :${c.url}`);
    }
  });

  e2e('toOthers() skips the sender even when the others are on other nodes', async () => {
    const [a, b, c] = await Promise.all([0, 1, 2].map((i) => rawClient(port(i))));
    for (const x of [a, b, c]) await x.subscribePrivate('private-chat.1');
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'private', name: 'chat.1' }], data: { text: 'mine' }, socket: a.socketId });
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'private', name: 'chat.1' }], data: { text: 'marker' } });
    for (const x of [b, c]) {
      await x.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).text === 'marker');
      assert.equal(x.all((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).text === 'mine').length, 1);
    }
    await a.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).text === 'marker');
    assert.equal(a.all((f) => dataOf(f)?.text === 'mine').length, 0, 'the sender got its own event');
  });

  e2e('the HTTP API on one node reaches every node, socket_id excluded cluster-wide', async () => {
    const [a, b, c] = await Promise.all([0, 1, 2].map((i) => rawClient(port(i))));
    for (const x of [a, b, c]) await x.subscribeOk('news');
    await pusherServer(port(0)).trigger('news', 'posted', { id: 1 }, { socket_id: c.socketId });
    await pusherServer(port(1)).trigger('news', 'posted', { id: 2 });
    for (const x of [a, b, c]) await x.next((f) => f.event === 'posted' && dataOf(f).id === 2);
    assert.equal(a.all('posted').length, 2);
    assert.equal(b.all('posted').length, 2);
    assert.deepEqual(c.all('posted').map((f) => dataOf(f).id), [2]);
  });

  e2e('a client event on one node reaches subscribers on the others, never the sender', async () => {
    const [a, b, c] = await Promise.all([0, 1, 2].map((i) => rawClient(port(i))));
    await a.subscribePresence('presence-room.1', 1, 'A');
    await b.subscribePresence('presence-room.1', 2, 'B');
    await c.subscribePresence('presence-room.1', 3, 'C');
    a.send({ event: 'client-typing', channel: 'presence-room.1', data: { who: 'A' } });
    for (const x of [b, c]) {
      const f = await x.next('client-typing');
      assert.equal(f.user_id, '1');
      assert.deepEqual(f.data, { who: 'A' });
    }
    await a.ping();
    b.send({ event: 'client-typing', channel: 'presence-room.1', data: { who: 'B' } });
    await a.next('client-typing');
    assert.equal(a.all('client-typing').length, 1, 'A got only B\'s event, not its own');
  });

  e2e('one user with tabs on two nodes is one member: one joining, one leaving, the same here() everywhere', async () => {
    const channel = 'presence-team.1';
    const observer = await rawClient(port(2));
    await observer.subscribePresence(channel, 9, 'Observer');
    const tab1 = await rawClient(port(0));
    const here1 = await tab1.subscribePresence(channel, 7, 'Ada');
    const tab2 = await rawClient(port(1));
    const here2 = await tab2.subscribePresence(channel, 7, 'Ada');
    const added = await observer.next('pusher_internal:member_added');
    assert.equal(dataOf(added).user_id, '7');
    assert.deepEqual(ids(here1), ['7', '9']);
    assert.deepEqual(ids(here2), ['7', '9'], 'here() is the same on every node');
    assert.equal(dataOf(here2).presence.count, 2);
    assert.deepEqual(dataOf(here2).presence.hash['7'], { id: 7, name: 'Ada' });
    // a late joiner on the third node sees both users once
    const late = await rawClient(port(2));
    const hereLate = await late.subscribePresence(channel, 8, 'Late');
    assert.deepEqual(ids(hereLate), ['7', '8', '9']);
    await late.close();
    await observer.next((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === '8');
    // closing one tab: nobody leaves
    await tab1.close();
    const marker = await rawClient(port(0));
    await marker.subscribePresence(channel, 10, 'Marker');
    await observer.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === '10');
    assert.equal(memberEvents(observer, channel).filter((f) => dataOf(f).user_id === '7').length, 1,
      'only the first tab announced user 7; closing one tab announced nothing');
    // closing the last tab: one leaving
    await tab2.close();
    const removed = await observer.next((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === '7');
    assert.ok(removed);
    await marker.close();
    await observer.next((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === '10');
    assert.equal(observer.all((f) => f.event === 'pusher_internal:member_removed' && dataOf(f).user_id === '7').length, 1);
  });

  e2e('Echo clients through the load balancer land on different nodes and agree', async () => {
    const lb = cluster.haproxy.port;
    const echos = [1, 2, 3].map((u) => makeEcho({ port: lb, userId: u, userName: `U${u}` }));
    const heres = [];
    for (const echo of echos) {
      const rec = recorder();
      const ch = echo.join('lobby').here(rec.fn);
      await echoSubscribed(ch);
      heres.push(await rec.next(1));
    }
    assert.deepEqual(heres[2].map((u) => u.id).sort(), [1, 2, 3]);
    const recs = echos.map((echo) => {
      const rec = recorder();
      echo.private('lb.1').listen('OrderShipped', rec.fn);
      return { echo, rec };
    });
    for (const { echo } of recs) await echoSubscribed(echo.private('lb.1'));
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'private', name: 'lb.1' }], data: { ok: true } });
    for (const { rec } of recs) assert.equal((await rec.next(1)).ok, true);
  }, { timeout: 45000 });

  e2e('kill -9 of a node: its users leave within 5 s, users with a tab elsewhere stay', { timeout: 45000 }, async () => {
    const victim = await cluster.addNode();
    const channel = 'presence-crash.1';
    const observer = await rawClient(port(0));
    await observer.subscribePresence(channel, 100, 'Observer');
    const onlyThere = await rawClient(victim.port);
    await onlyThere.subscribePresence(channel, 11, 'Gone');
    const bothA = await rawClient(victim.port);
    await bothA.subscribePresence(channel, 12, 'Stays');
    const bothB = await rawClient(port(1));
    await bothB.subscribePresence(channel, 12, 'Stays');
    await observer.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === '12');
    const killedAt = Date.now();
    await victim.kill9();
    const removed = await observer.next((f) => f.event === 'pusher_internal:member_removed', 8000);
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`# kill -9 -> member_removed after ${seconds.toFixed(2)} s`);
    assert.equal(dataOf(removed).user_id, '11');
    assert.ok(seconds < 5, `member_removed took ${seconds} s`);
    // a marker: a new member's event arrives after any (wrong) removal of user 12 would have
    const marker = await rawClient(port(2));
    await marker.subscribePresence(channel, 13, 'Marker');
    await observer.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === '13');
    assert.equal(observer.all((f) => f.event === 'pusher_internal:member_removed').length, 1, 'only user 11 left');
    const hereAfter = await (await rawClient(port(1))).subscribePresence(channel, 14, 'Check');
    assert.deepEqual(ids(hereAfter), ['100', '12', '13', '14']);
    cluster.nodes.splice(cluster.nodes.indexOf(victim), 1);
  });

  e2e('Redis restarted empty: presence and delivery recover with no spurious member events', { timeout: 60000 }, async () => {
    const channel = 'presence-restart.1';
    const observer = await rawClient(port(0));
    await observer.subscribePresence(channel, 21, 'Observer');
    const other = await rawClient(port(1));
    await other.subscribePresence(channel, 22, 'Other');
    await observer.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === '22');
    const before = memberEvents(observer, channel).length;
    await cluster.redis.restart();
    await cluster.allReady(20000);
    // the nodes put their members back: a newcomer sees both
    await waitFor(async () => {
      const probe = await rawClient(port(2));
      const here = await probe.subscribePresence(channel, 23, 'Probe');
      await probe.close();
      return ids(here).includes('21') && ids(here).includes('22');
    }, { timeout: 10000, what: 'members re-registered after the Redis restart' });
    // delivery works again, on a channel subscribed before the restart
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'presence', name: 'restart.1' }], data: { after: true } });
    await observer.next((f) => f.event === 'App\\Events\\OrderShipped' && dataOf(f).after === true);
    const spurious = memberEvents(observer, channel).slice(before).filter((f) => dataOf(f).user_id !== '23');
    assert.deepEqual(spurious, [], 'no member_added/member_removed for users who never left');
  });
});

describe('two apps on one Redis', { skip }, () => {
  let cluster;
  let configDir;
  const config = `
[[apps]]
id = "app-a"
key = "key-a"
secret = "secret-a"
redis_prefix = "a_database_"

[[apps]]
id = "app-b"
key = "key-b"
secret = "secret-b"
redis_prefix = "b_database_"
`;
  before(async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-apps-'));
    const file = path.join(configDir, 'herald.toml');
    fs.writeFileSync(file, config);
    cluster = await startCluster({ n: 2, lb: false, env: { HERALD_CONFIG: file, HERALD_APP_ID: '', HERALD_APP_KEY: '', HERALD_APP_SECRET: '' } });
  });
  after(async () => {
    await closeClients();
    await cluster?.stop();
    if (configDir) (await import('node:fs')).rmSync(configDir, { recursive: true, force: true });
  });
  autoCloseClients();

  e2e('events and presence never cross between apps', async () => {
    const a = await rawClient(cluster.nodes[0].port, 'key-a');
    const b = await rawClient(cluster.nodes[1].port, 'key-b');
    await a.subscribeOk('news');
    await b.subscribeOk('news');
    await pusherServer(cluster.nodes[0].port, { appId: 'app-a', key: 'key-a', secret: 'secret-a' }).trigger('news', 'for-a', { x: 1 });
    await laravelBroadcast(cluster.redis.port, { prefix: 'a_database_', channels: [{ type: 'public', name: 'news' }], data: { app: 'a' } });
    await pusherServer(cluster.nodes[1].port, { appId: 'app-b', key: 'key-b', secret: 'secret-b' }).trigger('news', 'for-b', { x: 2 });
    await a.next('App\\Events\\OrderShipped');
    await b.next('for-b');
    assert.equal(b.all('for-a').length, 0);
    assert.equal(b.all('App\\Events\\OrderShipped').length, 0);
    assert.equal(a.all('for-b').length, 0);
    const signA = { key: 'key-a', secret: 'secret-a' };
    const signB = { key: 'key-b', secret: 'secret-b' };
    const pa = await rawClient(cluster.nodes[0].port, 'key-a');
    const hereA = await pa.subscribePresence('presence-same', 1, 'A', signA);
    const pb = await rawClient(cluster.nodes[1].port, 'key-b');
    const hereB = await pb.subscribePresence('presence-same', 2, 'B', signB);
    assert.deepEqual(ids(hereA), ['1']);
    assert.deepEqual(ids(hereB), ['2'], 'app b does not see app a\'s member');
  });
});
