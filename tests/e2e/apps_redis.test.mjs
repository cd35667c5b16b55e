// Apps kept in Redis and managed with `herald apps`, on three nodes sharing one Redis: a created app accepts
// connections and HTTP API calls on every node within a second; a secret rotated mid-traffic breaks nobody;
// a disabled app's clients are closed with 4003; a bad change is refused before it is stored; a Redis that
// restarts without its data does not make the known apps unknown.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  e2e, waitFor, rawClient, pusherServer, closeClients, autoCloseClients, sleep, HERALD_BIN, LARAVEL_FALLBACKS,
  hmacHex, REPO_ROOT, launchChromium,
} from '../lib/harness.mjs';

const ADMIN_TOKEN = 'admin-token-for-the-test-0123';
const DASHBOARD_TOKEN = 'dashboard-token-for-apps-0123';

/** A request to the admin endpoint, signed as the Pusher HTTP API signs (the admin token as the secret). */
async function admin(port, method, urlPath, body, { token = ADMIN_TOKEN } = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  const params = { auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  if (text) params.body_md5 = createHash('md5').update(text).digest('hex');
  const sorted = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  const signature = hmacHex(token, `${method}\n${urlPath}\n${sorted}`);
  const r = await fetch(`http://127.0.0.1:${port}${urlPath}?${sorted}&auth_signature=${signature}`, {
    method, body: text || undefined, headers: text ? { 'content-type': 'application/json' } : {},
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}
import { startCluster, acceptedByEveryNode, steadyTraffic } from '../lib/cluster.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';

describe('apps kept in Redis (herald apps)', { skip }, () => {
  let cluster;
  const apps = (...args) => {
    const env = Object.fromEntries(Object.entries(process.env)
      .filter(([k]) => !k.startsWith('HERALD_') && !LARAVEL_FALLBACKS.includes(k)));
    const r = spawnSync(HERALD_BIN, ['apps', ...args], {
      env: { ...env, HERALD_REDIS_URL: cluster.redis.url, HERALD_REDIS_APPS: 'true', HERALD_SECRET_OVERLAP_SECS: '60' },
      encoding: 'utf8', timeout: 15000,
    });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const field = (out, name) => new RegExp(`^${name}\\t(\\S+)$`, 'm').exec(out)?.[1];
  const acceptedEverywhere = (key) => acceptedByEveryNode(cluster.nodes, key);
  let shop;

  before(async () => {
    cluster = await startCluster({
      n: 3,
      lb: false,
      env: {
        HERALD_REDIS_APPS: 'true', HERALD_SECRET_OVERLAP_SECS: '60', HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        HERALD_DASHBOARD_TOKEN: DASHBOARD_TOKEN,
      },
    });
  });
  after(async () => {
    await closeClients();
    await cluster?.stop();
  });
  autoCloseClients();

  e2e('an app created with herald apps create works on every node within a second', async () => {
    const created = apps('create', '--id', 'shop', '--set', 'redis_prefix=shop_', '--set', 'max_connections=100');
    assert.equal(created.code, 0, created.out);
    const started = Date.now();
    shop = { key: field(created.out, 'key'), secret: field(created.out, 'secret') };
    assert.match(shop.key, /^[0-9a-f]{20}$/);
    assert.match(shop.secret, /^[0-9a-f]{40}$/);
    await waitFor(() => acceptedEverywhere(shop.key), { timeout: 3000, interval: 50, what: 'the new app on every node' });
    const took = Date.now() - started;
    assert.ok(took < 1500, `accepted on every node ${took} ms after herald apps create`);
    const client = await rawClient(cluster.nodes[0].port, shop.key);
    await client.subscribeOk('orders');
    await pusherServer(cluster.nodes[2].port, { appId: 'shop', key: shop.key, secret: shop.secret })
      .trigger('orders', 'shipped', { id: 7 });
    assert.deepEqual(JSON.parse((await client.next('shipped')).data), { id: 7 });
    const list = apps('list');
    assert.match(list.out, new RegExp(`^shop\\tkey ${shop.key}\\tenabled$`, 'm'));
    const shown = apps('show', 'shop');
    assert.match(shown.out, /"secret": "\*\*\*\*\*\*\*\*"/);
    assert.match(shown.out, /"max_connections": 100/);
    console.log(`a created app accepted on all three nodes ${took} ms after herald apps create`);
  });

  e2e('a bad change is refused before it is stored, with the reason', async () => {
    const bad = apps('update', 'shop', '--set', 'max_presence_memberz=3');
    assert.equal(bad.code, 2);
    assert.match(bad.out, /app "shop" in Redis: unknown field `max_presence_memberz`/);
    const clash = apps('create', '--id', 'blog', '--key', shop.key, '--set', 'redis_prefix=blog_');
    assert.equal(clash.code, 2);
    assert.match(clash.out, /key/);
    assert.match(apps('show', 'shop').out, /"max_connections": 100/, 'unchanged');
  });

  e2e('a secret rotated mid-traffic breaks nobody; the new one works at once', async () => {
    const watcher = await rawClient(cluster.nodes[1].port, shop.key);
    await watcher.subscribeOk('ticks');
    const traffic = steadyTraffic((n) =>
      pusherServer(cluster.nodes[n % 3].port, { appId: 'shop', key: shop.key, secret: shop.secret }).trigger('ticks', 'tick', { n }));
    await sleep(300);
    const rotated = apps('rotate-secret', 'shop');
    assert.equal(rotated.code, 0, rotated.out);
    const fresh = /new secret for app shop: ([0-9a-f]{40})/.exec(rotated.out)[1];
    await waitFor(async () => {
      try {
        await pusherServer(cluster.nodes[0].port, { appId: 'shop', key: shop.key, secret: fresh }).trigger('ticks', 'tick', { n: -1 });
        return true;
      } catch { return false; }
    }, { timeout: 3000, what: 'the new secret accepted' });
    await sleep(500);
    await traffic.stop();
    assert.deepEqual(traffic.failures, []);
    await waitFor(() => watcher.frames.filter((f) => f.event === 'tick').length >= traffic.sent, { timeout: 5000, what: 'every tick' });
    shop.secret = fresh;
  });

  e2e('the known apps survive a Redis restart that lost them', async () => {
    await cluster.redis.restart();
    await cluster.allReady(20000);
    // Every node still takes the app, and its records are back in Redis.
    assert.ok(await acceptedEverywhere(shop.key));
    await waitFor(() => /^shop\t/m.test(apps('list').out), { timeout: 5000, what: 'the app put back into Redis' });
    await pusherServer(cluster.nodes[1].port, { appId: 'shop', key: shop.key, secret: shop.secret }).trigger('x', 'y', {});
  });

  e2e('a disabled app\'s clients are closed with 4003; delete removes it', async () => {
    const clients = await Promise.all(cluster.nodes.map((n) => rawClient(n.port, shop.key)));
    assert.equal(apps('disable', 'shop').code, 0);
    for (const c of clients) assert.deepEqual(await c.waitClosed(3000), { code: 4003, reason: 'App disabled' });
    assert.equal(apps('enable', 'shop').code, 0);
    await waitFor(() => acceptedEverywhere(shop.key), { timeout: 3000, what: 'enabled again' });
    const last = await rawClient(cluster.nodes[2].port, shop.key);
    assert.equal(apps('delete', 'shop').code, 0);
    assert.equal((await last.waitClosed(3000)).code, 4003);
    // Every node forgets it within a second: its key is unknown again (4001).
    await waitFor(async () => {
      const gone = await rawClient(cluster.nodes[0].port, shop.key, undefined, { established: false });
      return (await gone.waitClosed()).code === 4001;
    }, { timeout: 3000, what: 'the deleted app unknown' });
  });

  e2e('the signed admin endpoint does the same for automation', async () => {
    const [a, b] = cluster.nodes;
    assert.equal((await admin(a.port, 'GET', '/herald/admin/apps', undefined, { token: 'not-the-admin-token-x' })).status, 401);
    const created = await admin(a.port, 'POST', '/herald/admin/apps', { id: 'tenant-7', redis_prefix: 'tenant7_' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { key, secret } = created.body.app;
    await waitFor(() => acceptedEverywhere(key), { timeout: 3000, interval: 50, what: 'the tenant on every node' });
    await pusherServer(b.port, { appId: 'tenant-7', key, secret }).trigger('x', 'y', {});
    const listed = await admin(b.port, 'GET', '/herald/admin/apps');
    assert.deepEqual(listed.body.apps.map((x) => [x.id, x.secret]), [['tenant-7', '********']]);
    const bad = await admin(b.port, 'PATCH', '/herald/admin/apps/tenant-7', { max_connectionz: 1 });
    assert.equal(bad.status, 422);
    assert.match(bad.body.error, /unknown field `max_connectionz`/);
    const client = await rawClient(cluster.nodes[2].port, key);
    assert.equal((await admin(b.port, 'PATCH', '/herald/admin/apps/tenant-7', { enabled: false })).status, 200);
    assert.equal((await client.waitClosed(3000)).code, 4003);
    const rotated = await admin(a.port, 'POST', '/herald/admin/apps/tenant-7/rotate-secret');
    assert.match(rotated.body.secret, /^[0-9a-f]{40}$/);
    assert.equal(rotated.body.overlap_secs, 60);
    assert.equal((await admin(a.port, 'DELETE', '/herald/admin/apps/tenant-7')).status, 200);
    assert.equal((await admin(a.port, 'GET', '/herald/admin/apps/tenant-7')).status, 404);
  });

  e2e('the dashboard manages them too: create, disable (clients closed with 4003), delete', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
      page.on('dialog', (d) => d.accept());
      await page.goto(`http://127.0.0.1:${cluster.nodes[0].port}/herald/dashboard/`);
      await page.fill('input[name="token"]', DASHBOARD_TOKEN);
      await Promise.all([page.waitForNavigation(), page.click('form button[type="submit"]')]);
      await page.waitForSelector('#manage:not([hidden])', { timeout: 10000 });
      await page.fill('#create-app input[name="id"]', 'from-page');
      await page.fill('#create-app textarea[name="settings"]', '{"redis_prefix": "frompage_"}');
      await page.click('#create-app button[type="submit"]');
      await page.waitForFunction(() => /^Created from-page: key [0-9a-f]{20}, secret [0-9a-f]{40}$/
        .test(document.getElementById('manage-result').textContent), null, { timeout: 5000 });
      const key = /key ([0-9a-f]{20})/.exec(await page.textContent('#manage-result'))[1];
      await waitFor(() => acceptedEverywhere(key), { timeout: 3000, what: 'the app made on the page, on every node' });
      const client = await rawClient(cluster.nodes[1].port, key);
      await page.click('#stored-apps tr[data-app="from-page"] button:has-text("Disable")');
      assert.equal((await client.waitClosed(3000)).code, 4003);
      await page.waitForSelector('#stored-apps tr[data-app="from-page"] td.no', { timeout: 5000 });
      fs.mkdirSync(path.join(REPO_ROOT, 'target', 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: path.join(REPO_ROOT, 'target', 'test-artifacts', 'dashboard-apps.png'), fullPage: true });
      await page.click('#stored-apps tr[data-app="from-page"] button:has-text("Delete")');
      await page.waitForFunction(() => !document.querySelector('#stored-apps tr[data-app="from-page"]'), null, { timeout: 5000 });
      // Without the header the page sends, a change is refused even with the session cookie.
      const status = await page.evaluate(async () => (await fetch('/herald/dashboard/api/admin/apps', {
        method: 'POST', body: '{"id":"sneaky"}', headers: { 'content-type': 'application/json' },
      })).status);
      assert.equal(status, 403);
    } finally {
      await browser.close();
    }
  });
});
