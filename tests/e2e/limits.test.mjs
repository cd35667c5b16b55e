// Per-app limits and policies, each with the Pusher code or HTTP status a client expects, enforced for the
// whole cluster: connection quota, allowed origins, HTTP API rate, sign-in timeout, presence member limit
// and member size.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  e2e, autoCloseClients, closeClients, rawClient, pusherServer, dataOf, waitFor, hmacHex, startHerald,
  APP_KEY, APP_SECRET, presenceData, signPresence, WebSocket,
} from '../lib/harness.mjs';
import { startCluster } from '../lib/cluster.mjs';

const skipCluster = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

function openWithOrigin(port, origin) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${APP_KEY}?protocol=7`, { origin });
    const frames = [];
    ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
    ws.on('close', (code) => resolve({ code, frames }));
    ws.on('open', () => setTimeout(() => ws.close(1000), 300));
  });
}

describe('per-app policies on one node', () => {
  let herald;
  before(async () => {
    herald = await startHerald({
      env: { HERALD_ALLOWED_ORIGINS: 'https://app.test,*.shop.test', HERALD_SIGNIN_TIMEOUT_SECS: '1', HERALD_MAX_API_REQUESTS_PER_SECOND: '5' },
    });
  });
  after(async () => { await closeClients(); await herald?.stop(); });
  autoCloseClients();

  e2e('a WebSocket from an origin not on the list is refused with 4009; listed origins connect', async () => {
    const evil = await openWithOrigin(herald.port, 'https://evil.test');
    assert.equal(evil.code, 4009);
    assert.equal(evil.frames[0]?.event, 'pusher:error');
    const good = await openWithOrigin(herald.port, 'https://app.test');
    assert.equal(good.frames[0]?.event, 'pusher:connection_established');
    const sub = await openWithOrigin(herald.port, 'https://eu.shop.test');
    assert.equal(sub.frames[0]?.event, 'pusher:connection_established');
  });

  e2e('a connection that does not sign in within the timeout is closed with 4009; one that does stays', async () => {
    const silent = await rawClient(herald.port, APP_KEY, 'protocol=7', { headers: { origin: 'https://app.test' } });
    const signed = await rawClient(herald.port, APP_KEY, 'protocol=7', { headers: { origin: 'https://app.test' } });
    const userData = JSON.stringify({ id: '9' });
    signed.send({ event: 'pusher:signin', data: { auth: `${APP_KEY}:${hmacHex(APP_SECRET, `${signed.socketId}::user::${userData}`)}`, user_data: userData } });
    await signed.next('pusher:signin_success');
    const closed = await silent.waitClosed(5000);
    assert.equal(closed.code, 4009);
    await signed.ping();
    assert.ok(signed.isOpen());
  });

  e2e('the HTTP API over its rate gets 429', async () => {
    const api = pusherServer(herald.port);
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => api.trigger('rate', 'e', { i })));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const limited = results.filter((r) => r.status === 'rejected' && r.reason.status === 429).length;
    assert.ok(ok >= 5, `${ok} succeeded`);
    assert.ok(limited >= 1, `${limited} got 429`);
    assert.equal(ok + limited, 20);
  });
});

describe('cluster-wide limits', { skip: skipCluster }, () => {
  let cluster;
  let configDir;
  before(async () => {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-limits-'));
    const file = path.join(configDir, 'herald.toml');
    fs.writeFileSync(file, `
[[apps]]
id = "app-id"
key = "${APP_KEY}"
secret = "${APP_SECRET}"
max_connections = 3
max_presence_members = 2
max_member_size = 200

[[apps]]
id = "burst"
key = "burst-key"
secret = "burst-secret"
redis_prefix = "burst_"
max_connections = 10
`);
    cluster = await startCluster({ n: 2, lb: false, env: { HERALD_CONFIG: file, HERALD_APP_ID: '', HERALD_APP_KEY: '', HERALD_APP_SECRET: '' } });
  });
  after(async () => {
    await closeClients();
    await cluster?.stop();
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
  });
  autoCloseClients();

  e2e('presence member limit counts users across nodes and tabs; oversized channel_data is refused', async () => {
    const a = await rawClient(cluster.nodes[0].port);
    const b = await rawClient(cluster.nodes[1].port);
    await a.subscribePresence('presence-full', 1, 'One');
    await b.subscribePresence('presence-full', 2, 'Two');
    const c = await rawClient(cluster.nodes[0].port);
    const data = presenceData(3, 'Three');
    c.subscribe('presence-full', { auth: signPresence(c.socketId, 'presence-full', data), channel_data: data });
    const refused = await c.next('pusher:subscription_error');
    assert.equal(dataOf(refused).status, 403);
    // a second tab of a member is not a new member
    await c.close();
    const tab = await rawClient(cluster.nodes[0].port);
    await tab.subscribePresence('presence-full', 2, 'Two');
    const big = JSON.stringify({ user_id: '5', user_info: { bio: 'x'.repeat(300) } });
    tab.subscribe('presence-big', { auth: signPresence(tab.socketId, 'presence-big', big), channel_data: big });
    assert.equal(dataOf(await tab.next('pusher:subscription_error')).status, 400);
  });

  e2e('a burst of 300 connections over two nodes at once never passes a quota of 10', async () => {
    const open = (port) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/app/burst-key?protocol=7`);
      let admitted = false;
      ws.on('message', (m) => { if (JSON.parse(m.toString()).event === 'pusher:connection_established') { admitted = true; resolve({ ws, admitted }); } });
      ws.on('close', (code) => resolve({ ws, admitted, code }));
      ws.on('error', () => resolve({ ws, admitted }));
    });
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => open(cluster.nodes[i % 2].port)));
    const admitted = results.filter((r) => r.admitted).length;
    const refused = results.filter((r) => r.code === 4004).length;
    for (const r of results) r.ws.terminate();
    assert.equal(admitted, 10, `admitted ${admitted}, refused with 4004: ${refused}`);
    assert.equal(refused, 290);
  });

  e2e('the connection quota holds across nodes: 4004 once the app has max_connections anywhere', async () => {
    await closeClients();
    // The previous test's connections leave the cluster-wide count a moment after they close: hold three
    // connections as soon as there is room for them.
    const admitted = (port) => waitFor(async () => {
      const c = await rawClient(port, APP_KEY, 'protocol=7', { established: false });
      const first = await c.next(() => true, 3000).catch(() => null);
      if (first?.event === 'pusher:connection_established') return c;
      await c.close();
      return false;
    }, { timeout: 20000, interval: 200, what: 'a connection admitted under the quota' });
    const held = [await admitted(cluster.nodes[0].port), await admitted(cluster.nodes[1].port), await admitted(cluster.nodes[1].port)];
    await waitFor(async () => {
      const extra = await rawClient(cluster.nodes[0].port, APP_KEY, 'protocol=7', { established: false });
      const closed = await extra.waitClosed(3000).catch(() => null);
      if (closed?.code === 4004) return true;
      await extra.close();
      return false;
    }, { timeout: 20000, interval: 200, what: 'a fourth connection to be refused with 4004' });
    await held[2].close();
    await waitFor(async () => {
      const again = await rawClient(cluster.nodes[0].port, APP_KEY, 'protocol=7', { established: false });
      const first = await again.next(() => true, 3000).catch(() => null);
      return first?.event === 'pusher:connection_established';
    }, { timeout: 20000, interval: 200, what: 'room for a connection after one closed' });
  });
});
