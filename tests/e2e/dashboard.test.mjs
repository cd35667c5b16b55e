// The debug dashboard in real headless Chromium, against three nodes on one Redis: nothing without the
// token, the login form, a Laravel event from another node in the console, the cluster-wide connection
// count, a presence channel's members, the event creator reaching a pusher-js client, and the console
// stream ending when the page goes. Screenshots land in target/test-artifacts/.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  e2e, waitFor, makeEcho, echoConnected, echoSubscribed, recorder, closeClients, Pusher,
  APP_KEY, REPO_ROOT, launchChromium,
} from '../lib/harness.mjs';
import { startCluster } from '../lib/cluster.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';

const TOKEN = 'dashboard-test-token-5b1d9e';
const SHOTS = path.join(REPO_ROOT, 'target', 'test-artifacts');
const BASE = '/herald/dashboard';

function pusherClient(port) {
  const pusher = new Pusher(APP_KEY, {
    wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: 'mt1', disableStats: true,
  });
  return pusher;
}

async function connected(pusher) {
  await waitFor(() => pusher.connection.state === 'connected', { timeout: 10000, what: 'pusher-js to connect' });
}

describe('dashboard', () => {
  let cluster;
  let browser;
  let page;
  const pushers = [];
  /** A pusher-js client on `port` subscribed to `channel`, recording `event`. */
  async function listening(port, channel, event) {
    const pusher = pusherClient(port);
    pushers.push(pusher);
    await connected(pusher);
    const subscribed = pusher.subscribe(channel);
    await new Promise((resolve) => subscribed.bind('pusher:subscription_succeeded', resolve));
    const received = recorder();
    subscribed.bind(event, received.fn);
    return received;
  }
  const url = (node, p = '/') => `http://127.0.0.1:${cluster.nodes[node].port}${BASE}${p}`;

  before(async () => {
    cluster = await startCluster({ n: 3, lb: false, env: { HERALD_DASHBOARD_TOKEN: TOKEN } });
    browser = await launchChromium();
    fs.mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    for (const p of pushers) p.disconnect();
    await closeClients();
    if (browser) await browser.close();
    if (cluster) await cluster.stop();
  });

  e2e('without the token nothing about any app is shown', async () => {
    const data = await fetch(url(0, '/api/apps'));
    assert.equal(data.status, 401);
    assert.doesNotMatch(await data.text(), /app-id/);
    const console = await fetch(url(0, '/api/apps/app-id/console'));
    assert.equal(console.status, 401);
    const send = await fetch(url(0, '/api/apps/app-id/events'), { method: 'POST', body: '{}' });
    assert.equal(send.status, 401);
    const login = await fetch(url(0, '/'));
    const html = await login.text();
    assert.match(html, /<input[^>]+name="token"/);
    assert.doesNotMatch(html, /app-id|app-key/);
    assert.match(login.headers.get('content-security-policy'), /frame-ancestors 'none'/);
    const wrong = await fetch(url(0, '/login'), {
      method: 'POST', body: 'token=not-the-token-at-all', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    assert.match(await wrong.text(), /That token does not open this dashboard/);
    const forged = await fetch(url(0, '/api/apps'), { headers: { cookie: 'herald_dashboard=99999999999~*~00' } });
    assert.equal(forged.status, 401, 'a cookie not signed with the token opens nothing');
    const crossSite = await fetch(url(0, '/login'), {
      method: 'POST', body: `token=${TOKEN}`, redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
    });
    assert.equal(crossSite.status, 403, 'a login posted from another site is refused');
  });

  e2e('wrong tokens are limited per address (429 with Retry-After)', async () => {
    // On node 2, which the browser does not use.
    const statuses = [];
    for (let i = 0; i < 14; i++) {
      const r = await fetch(url(2, '/login'), {
        method: 'POST', body: 'token=guess', redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      statuses.push(r.status);
      if (r.status === 429) assert.equal(r.headers.get('retry-after'), '60');
    }
    assert.deepEqual(statuses, [...Array(10).fill(401), ...Array(4).fill(429)]);
    // Bearer tokens (herald tail) are held to the same limit, from that address.
    const bearer = await fetch(url(2, '/api/apps'), { headers: { authorization: 'Bearer guess-guess-guess-guess' } });
    assert.equal(bearer.status, 429);
  });

  e2e('logging in loads the page, live, listing the three nodes', async () => {
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(url(0));
    await page.fill('input[name="token"]', TOKEN);
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    await page.waitForSelector('#app option[value="app-id"]', { state: 'attached', timeout: 10000 });
    await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: 10000 });
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr[data-node]').length === 3, null,
      { timeout: 10000 });
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'herald_dashboard');
    assert.ok(session.httpOnly && session.sameSite === 'Strict', JSON.stringify(session));
    assert.deepEqual(errors, []);
  });

  e2e('a Laravel event published through Redis shows in the console within 2 s, from the node that delivered it', async () => {
    const received = await listening(cluster.nodes[1].port, 'orders', 'App\\Events\\OrderShipped');
    const sent = Date.now();
    await laravelBroadcast(cluster.redis.port, { channels: [{ type: 'public', name: 'orders' }], data: { order: 42 } });
    await page.waitForFunction(() => [...document.querySelectorAll('#console li[data-kind="broadcast"] .what')]
      .some((w) => /laravel event App\\Events\\OrderShipped on orders/.test(w.textContent)), null, { timeout: 2000 });
    const shown = Date.now() - sent;
    await received.next(1);
    const row = await page.textContent('#console li[data-kind="broadcast"]');
    assert.match(row, /"order":42/);
    const nodeShown = await page.textContent('#console li[data-kind="broadcast"] .node');
    assert.notEqual(nodeShown.trim(), '', 'the delivering node is named');
    console.log(`Laravel event shown in the console ${shown} ms after the publish`);
  });

  e2e('20 pusher-js clients on two other nodes show as 20 connections', async () => {
    const count = () => page.evaluate(async (base) => (await (await fetch(`${base}/api/apps/app-id/overview`)).json())
      .connections, BASE);
    const before = await count();
    const extra = [];
    for (let i = 0; i < 20; i++) {
      const p = pusherClient(cluster.nodes[1 + (i % 2)].port);
      extra.push(p);
    }
    await Promise.all(extra.map(connected));
    await page.waitForFunction((want) => Number(document.getElementById('connections').textContent) === want,
      before + 20, { timeout: 10000 });
    for (const p of extra) p.disconnect();
    await page.waitForFunction((want) => Number(document.getElementById('connections').textContent) === want,
      before, { timeout: 10000 });
  });

  e2e('a presence channel lists its members', async () => {
    const ann = makeEcho({ port: cluster.nodes[1].port, userId: 7, userName: 'Ann' });
    const bob = makeEcho({ port: cluster.nodes[2].port, userId: 8, userName: 'Bob' });
    await Promise.all([echoConnected(ann), echoConnected(bob)]);
    await echoSubscribed(ann.join('room'));
    await echoSubscribed(bob.join('room'));
    const row = '#channels tr[data-channel="presence-room"]';
    await page.waitForSelector(row, { timeout: 10000 });
    await page.click(row);
    await page.waitForFunction(() => document.querySelectorAll('#channels .member').length === 2, null, { timeout: 10000 });
    const members = await page.$$eval('#channels .member', (els) => els.map((e) => e.textContent).sort());
    assert.match(members[0], /^7 .*Ann/);
    assert.match(members[1], /^8 .*Bob/);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-light.png'), fullPage: true });
  });

  e2e('the event creator delivers to a pusher-js client on another node', async () => {
    const received = await listening(cluster.nodes[2].port, 'news', 'headline');
    await page.fill('#creator input[name="channel"]', 'news');
    await page.fill('#creator input[name="name"]', 'headline');
    await page.fill('#creator textarea[name="data"]', '{"title":"from the dashboard"}');
    await page.click('#creator button[type="submit"]');
    const got = await received.next(1, 5000, 'the event from the dashboard');
    assert.deepEqual(got, { title: 'from the dashboard' });
    await page.waitForFunction(() => document.getElementById('creator-result').textContent === 'Sent.', null,
      { timeout: 5000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#console li[data-kind="broadcast"] .what')]
      .some((w) => /api event headline on news/.test(w.textContent)), null, { timeout: 2000 });
    // A request without the dashboard's header (a form on another site) is refused even with the cookie.
    const status = await page.evaluate(async (base) => (await fetch(`${base}/api/apps/app-id/events`, {
      method: 'POST', body: JSON.stringify({ name: 'x', channel: 'news', data: '{}' }),
    })).status, BASE);
    assert.equal(status, 403);
  });

  e2e('refusals and disconnects show with their reason; the dark theme and a phone-sized screen render', async () => {
    const echo = makeEcho({
      port: cluster.nodes[1].port,
      authorizer: (channel) => ({ authorize: (socketId, cb) => cb(null, { auth: `${APP_KEY}:bad` }) }),
    });
    await echoConnected(echo);
    echo.private('secret');
    await page.waitForFunction(() => [...document.querySelectorAll('#console li[data-kind="subscription_refused"]')]
      .some((li) => /private-secret/.test(li.textContent) && /Invalid signature/.test(li.textContent)), null,
    { timeout: 5000 });
    await page.click('#theme');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-dark.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-phone.png'), fullPage: false });
  });

  e2e('closing the page ends the console stream everywhere', async () => {
    const channel = 'herald:app-id:c:#herald-console';
    const numsub = () => Number(execFileSync('redis-cli', ['-p', String(cluster.redis.port), 'PUBSUB', 'NUMSUB', channel])
      .toString().trim().split('\n')[1]);
    assert.ok(numsub() >= 1, 'the watching node listens while the page is open');
    await page.close();
    await waitFor(() => numsub() === 0, { timeout: 5000, what: 'the console channel to lose its listener' });
    const metrics = await (await fetch(`http://127.0.0.1:${cluster.nodes[0].port}/metrics`)).text();
    assert.match(metrics, /^herald_console_watchers 0$/m);
  });
});

