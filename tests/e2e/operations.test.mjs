// What an SRE relies on: Prometheus metrics that follow what clients do, metrics and probes on a port of
// their own, and a graceful drain on SIGTERM that moves clients to the other nodes without a presence flap.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, closeClients, startHerald, rawClient, pusherServer, httpGet, waitFor, readyzStatus,
  makeEcho, echoSubscribed, recorder, echoState, dataOf, freePort,
} from '../lib/harness.mjs';
import { startCluster, startHaproxy } from '../lib/cluster.mjs';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The value of one sample in a Prometheus text exposition, or undefined. */
function sample(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

describe('metrics', () => {
  let herald;
  before(async () => { herald = await startHerald(); });
  after(async () => { await closeClients(); await herald?.stop(); });
  autoCloseClients();

  e2e('/metrics follows connections, subscriptions, broadcasts and API calls', async () => {
    const a = await rawClient(herald.port);
    const b = await rawClient(herald.port);
    await a.subscribeOk('metrics-demo');
    await b.subscribeOk('metrics-demo');
    b.subscribe('private-nope', { auth: 'app-key:bad' });
    await b.next('pusher:subscription_error');
    await pusherServer(herald.port).trigger('metrics-demo', 'tick', { n: 1 });
    await a.next('tick');
    await b.next('tick');
    const { status, body, headers } = await httpGet(herald.port, '/metrics');
    assert.equal(status, 200);
    assert.match(headers['content-type'], /text\/plain/);
    const app = { app: 'app-id' };
    assert.equal(sample(body, 'herald_connections', app), 2);
    assert.equal(sample(body, 'herald_subscriptions', app), 2);
    assert.equal(sample(body, 'herald_channels', app), 1);
    assert.equal(sample(body, 'herald_broadcasts_total', { app: 'app-id', source: 'api' }), 1);
    assert.ok(sample(body, 'herald_messages_sent_total', app) >= 2);
    assert.equal(sample(body, 'herald_subscription_rejections_total', { app: 'app-id', reason: 'auth' }), 1);
    assert.equal(sample(body, 'herald_http_requests_total', { endpoint: 'api_events', status: '200' }), 1);
    assert.ok(sample(body, 'herald_broadcast_latency_seconds_count') >= 1);
    assert.equal(sample(body, 'herald_ready'), 1);
    assert.ok(!/herald_[a-z_]*metrics-demo/.test(body), 'no channel names in metric names or labels');
    assert.ok(!body.includes('metrics-demo'), 'no channel names as label values');
  });
});

describe('metrics port', () => {
  let herald;
  let metricsPort;
  before(async () => {
    metricsPort = await freePort();
    herald = await startHerald({ env: { HERALD_METRICS_PORT: String(metricsPort) }, waitReady: false });
    await waitFor(async () => (await readyzStatus(metricsPort)) === 200, { timeout: 20000, what: 'readyz on the metrics port' });
  });
  after(async () => { await closeClients(); await herald?.stop(); });

  e2e('HERALD_METRICS_PORT moves /metrics and the probes off the client port', async () => {
    assert.equal((await httpGet(metricsPort, '/metrics')).status, 200);
    assert.equal((await httpGet(metricsPort, '/livez')).status, 200);
    assert.equal((await httpGet(herald.port, '/metrics')).status, 404);
    assert.equal((await httpGet(herald.port, '/readyz')).status, 404);
    const c = await rawClient(herald.port);
    await c.subscribeOk('still-works');
  });
});

describe('graceful drain', { skip: process.env.HERALD_TEST_MODE === 'embedded' && 'needs Redis' }, () => {
  let cluster;
  let lb;
  before(async () => {
    cluster = await startCluster({ n: 4, lb: false, env: { HERALD_DRAIN_SECS: '2', HERALD_PRESENCE_GRACE_MS: '4000' } });
    lb = await startHaproxy([cluster.nodes[0].port, cluster.nodes[1].port, cluster.nodes[2].port]);
  });
  after(async () => { await closeClients(); await lb?.stop(); await cluster?.stop(); });
  autoCloseClients();

  e2e('SIGTERM: unready at once, clients move to another node, presence does not flap, the process exits', { timeout: 60000 }, async () => {
    const channel = 'presence-drain.1';
    const observer = await rawClient(cluster.nodes[3].port);
    await observer.subscribePresence(channel, 1, 'Observer');
    const echo = makeEcho({ port: lb.port, userId: 5, userName: 'Moving' });
    const rec = recorder();
    const ch = echo.join('drain.1').here(rec.fn);
    await echoSubscribed(ch);
    // more Echo clients on a public channel, spread over the three nodes by the load balancer
    const crowd = [1, 2, 3, 4, 5, 6].map(() => makeEcho({ port: lb.port }));
    const crowdRecs = [];
    for (const e of crowd) {
      const r = recorder();
      await echoSubscribed(e.channel('news').listen('.posted', r.fn));
      crowdRecs.push(r);
    }
    await observer.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === '5');
    const firstSocket = echo.socketId();
    // the node holding the presence user: the one whose presence store took a join
    let victimIndex = -1;
    for (const i of [0, 1, 2]) {
      const { body } = await httpGet(cluster.nodes[i].port, '/metrics');
      if ((sample(body, 'herald_presence_operations_total', { op: 'join', result: 'ok' }) ?? 0) > 0) victimIndex = i;
    }
    assert.notEqual(victimIndex, -1, 'the presence user is on one of the balanced nodes');
    const victim = cluster.nodes[victimIndex];
    const startedAt = Date.now();
    process.kill(victim.pid, 'SIGTERM');
    await waitFor(async () => (await readyzStatus(victim.port)) !== 200, { timeout: 2000, what: 'the draining node to turn unready' });
    await waitFor(() => echoState(echo) === 'connected' && echo.socketId() !== firstSocket, { timeout: 15000, what: 'Echo to reconnect elsewhere' });
    const rejoined = await rec.next(2, 10000, 'here() after the reconnect');
    assert.deepEqual(rejoined.map((u) => u.id).sort(), [1, 5]);
    await waitFor(() => !victim.alive(), { timeout: 20000, what: 'the drained node to exit' });
    // every crowd client is connected again (elsewhere) and none misses an event published now
    await waitFor(() => crowd.every((e) => echoState(e) === 'connected'), { timeout: 15000, what: 'the crowd to reconnect' });
    await waitFor(() => crowd.every((e) => e.connector.pusher.channel('news')?.subscribed === true), {
      timeout: 15000, what: 'the crowd to be subscribed again',
    });
    const seen = crowdRecs.map((r) => r.count);
    await pusherServer(cluster.nodes[3].port).trigger('news', 'posted', { after: 'drain' });
    for (const [i, r] of crowdRecs.entries()) assert.deepEqual(await r.next(seen[i] + 1), { after: 'drain' });
    console.log(`# drain: node exited ${((Date.now() - startedAt) / 1000).toFixed(1)} s after SIGTERM`);
    // after the grace period, a marker member: no member_removed/member_added for user 5 came in between
    const marker = await rawClient(cluster.nodes[2].port);
    await marker.subscribePresence(channel, 6, 'Marker');
    await observer.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === '6');
    const flaps = observer.all((f) => f.channel === channel && dataOf(f)?.user_id === '5');
    assert.equal(flaps.length, 1, `user 5 was announced once and never left: ${JSON.stringify(flaps)}`);
    cluster.nodes.splice(cluster.nodes.indexOf(victim), 1);
  });
});

describe('a real Prometheus scrapes every node of a cluster under load', { skip: process.env.HERALD_TEST_MODE === 'embedded' && 'needs Redis' }, () => {
  let cluster;
  let prom;
  let dir;
  before(async () => {
    cluster = await startCluster({ n: 3, lb: false });
    const port = await freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-prom-'));
    const targets = cluster.nodes.map((h) => `'127.0.0.1:${h.port}'`).join(', ');
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: herald\n    static_configs:\n      - targets: [${targets}]\n`);
    const child = spawn('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`, `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
    ], { stdio: 'ignore' });
    process.on('exit', () => child.kill('SIGKILL'));
    prom = { port, child };
  });
  after(async () => {
    await closeClients();
    prom?.child.kill('SIGTERM');
    await cluster?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  autoCloseClients();

  async function query(expr) {
    try {
      const { status, body } = await httpGet(prom.port, `/api/v1/query?query=${encodeURIComponent(expr)}`);
      return status === 200 ? JSON.parse(body).data.result : [];
    } catch {
      return []; // not listening yet
    }
  }

  e2e('up == 1 for every node, and the delivery counters move with the load', { timeout: 60000 }, async () => {
    await waitFor(async () => {
      const up = await query('up{job="herald"} == 1');
      return up.length === 3;
    }, { timeout: 30000, interval: 500, what: 'Prometheus to scrape all three nodes' });
    const clients = await Promise.all(cluster.nodes.map((h) => rawClient(h.port)));
    for (const c of clients) await c.subscribeOk('prom-load');
    const api = pusherServer(cluster.nodes[0].port);
    for (let i = 0; i < 20; i++) await api.trigger('prom-load', 'tick', { i });
    for (const c of clients) await c.next((f) => f.event === 'tick' && dataOf(f).i === 19);
    await waitFor(async () => {
      const sent = await query('sum(herald_messages_sent_total{app="app-id"})');
      const conns = await query('sum(herald_connections{app="app-id"})');
      return Number(sent[0]?.value[1]) >= 60 && Number(conns[0]?.value[1]) === 3;
    }, { timeout: 20000, interval: 500, what: 'Prometheus to see 60 deliveries and 3 connections' });
    const subs = await query('herald_redis_subscription_up');
    assert.equal(subs.length, 3);
    assert.ok(subs.every((r) => r.value[1] === '1'));
  });
});
