// What an SRE relies on: Prometheus metrics that follow what clients do, metrics and probes on a port of
// their own, and a graceful drain on SIGTERM that moves clients to the other nodes without a presence flap.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, closeClients, startHerald, rawClient, pusherServer, httpGet, waitFor, readyzStatus,
  makeEcho, echoSubscribed, recorder, echoState, dataOf, freePort,
} from '../lib/harness.mjs';
import { startCluster, startHaproxy } from '../lib/cluster.mjs';

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
    cluster = await startCluster({ n: 3, lb: false, env: { HERALD_DRAIN_SECONDS: '2', HERALD_PRESENCE_GRACE_MS: '4000' } });
    lb = await startHaproxy([cluster.nodes[0].port, cluster.nodes[1].port]);
  });
  after(async () => { await closeClients(); await lb?.stop(); await cluster?.stop(); });
  autoCloseClients();

  e2e('SIGTERM: unready at once, clients move to another node, presence does not flap, the process exits', { timeout: 60000 }, async () => {
    const channel = 'presence-drain.1';
    const observer = await rawClient(cluster.nodes[2].port);
    await observer.subscribePresence(channel, 1, 'Observer');
    const echo = makeEcho({ port: lb.port, userId: 5, userName: 'Moving' });
    const rec = recorder();
    const ch = echo.join('drain.1').here(rec.fn);
    await echoSubscribed(ch);
    await observer.next((f) => f.event === 'pusher_internal:member_added' && dataOf(f).user_id === '5');
    const firstSocket = echo.socketId();
    // find the node the Echo client landed on
    const counts = await Promise.all([0, 1].map(async (i) => {
      const { body } = await httpGet(cluster.nodes[i].port, '/metrics');
      return sample(body, 'herald_connections', { app: 'app-id' }) ?? 0;
    }));
    const victim = cluster.nodes[counts[0] === 1 ? 0 : 1];
    const startedAt = Date.now();
    process.kill(victim.pid, 'SIGTERM');
    await waitFor(async () => (await readyzStatus(victim.port)) !== 200, { timeout: 2000, what: 'the draining node to turn unready' });
    await waitFor(() => echoState(echo) === 'connected' && echo.socketId() !== firstSocket, { timeout: 15000, what: 'Echo to reconnect elsewhere' });
    const rejoined = await rec.next(2, 10000, 'here() after the reconnect');
    assert.deepEqual(rejoined.map((u) => u.id).sort(), [1, 5]);
    await waitFor(() => !victim.alive(), { timeout: 20000, what: 'the drained node to exit' });
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
