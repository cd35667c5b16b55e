// Apps that change without a restart, on three nodes sharing one Redis and one config file: an app added
// and SIGHUP sent works on every node at once; an edited file is picked up by itself; a secret rotated
// mid-traffic breaks nobody during the overlap and the old one is refused after it; a disabled app's
// clients are closed with 4003; a bad file keeps the running apps and says what is wrong.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  e2e, waitFor, rawClient, pusherServer, closeClients, autoCloseClients, sleep,
} from '../lib/harness.mjs';
import { startCluster, acceptedByEveryNode, steadyTraffic } from '../lib/cluster.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';
const OVERLAP_SECS = 4;

function app(id, secret, extra = '') {
  return `[[apps]]\nid = "${id}"\nkey = "${id}-key"\nsecret = "${secret}"\nredis_prefix = "${id}_"\n${extra}\n`;
}

describe('apps reloaded while the cluster runs', { skip }, () => {
  let cluster;
  let dir;
  let file;
  const write = (text) => {
    // As Kubernetes does with a mounted ConfigMap: the new file replaces the old one at once.
    fs.writeFileSync(`${file}.new`, text);
    fs.renameSync(`${file}.new`, file);
  };
  const hup = () => { for (const n of cluster.nodes) process.kill(n.pid, 'SIGHUP'); };
  const reloads = async (n, result) => {
    const text = await (await fetch(`http://127.0.0.1:${n.port}/metrics`)).text();
    return Number((new RegExp(`^herald_config_reloads_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text) ?? [0, 0])[1]);
  };
  /** True once every node accepts a connection with `key`. */
  const acceptedEverywhere = (key) => acceptedByEveryNode(cluster.nodes, key);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-reload-'));
    file = path.join(dir, 'herald.toml');
    fs.writeFileSync(file, app('shop', 'shop-secret-1'));
    cluster = await startCluster({
      n: 3, lb: false, env: { HERALD_CONFIG: file, HERALD_SECRET_OVERLAP_SECS: String(OVERLAP_SECS) },
    });
  });
  after(async () => {
    await closeClients();
    await cluster?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  autoCloseClients();

  e2e('an app added to the file works on every node right after SIGHUP', async () => {
    const refused = await rawClient(cluster.nodes[0].port, 'blog-key', undefined, { established: false });
    assert.equal((await refused.waitClosed()).code, 4001, 'unknown before the reload');
    write(app('shop', 'shop-secret-1') + app('blog', 'blog-secret'));
    const sent = Date.now();
    hup();
    await waitFor(() => acceptedEverywhere('blog-key'), { timeout: 5000, what: 'blog on every node' });
    const took = Date.now() - sent;
    // Its HTTP API works on another node, and reaches a client of the first.
    const client = await rawClient(cluster.nodes[0].port, 'blog-key');
    await client.subscribeOk('news');
    await pusherServer(cluster.nodes[2].port, { appId: 'blog', key: 'blog-key', secret: 'blog-secret' })
      .trigger('news', 'posted', { id: 1 });
    assert.deepEqual(JSON.parse((await client.next('posted')).data), { id: 1 });
    console.log(`a new app accepted on all three nodes ${took} ms after SIGHUP`);
  });

  e2e('an edited file is picked up without a signal', async () => {
    write(app('shop', 'shop-secret-1') + app('blog', 'blog-secret') + app('wiki', 'wiki-secret'));
    await waitFor(() => acceptedEverywhere('wiki-key'), { timeout: 8000, interval: 200, what: 'wiki on every node' });
  });

  e2e('a rotated secret breaks nobody during the overlap; the old one is refused after it', async () => {
    const oldApi = (n) => pusherServer(cluster.nodes[n].port, { appId: 'shop', key: 'shop-key', secret: 'shop-secret-1' });
    const newApi = (n) => pusherServer(cluster.nodes[n].port, { appId: 'shop', key: 'shop-key', secret: 'shop-secret-2' });
    const watcher = await rawClient(cluster.nodes[1].port, 'shop-key');
    await watcher.subscribePrivate('private-orders', { key: 'shop-key', secret: 'shop-secret-1' });
    // Traffic signed with the old secret runs through the rotation.
    const traffic = steadyTraffic((n) => oldApi(n % 3).trigger('private-orders', 'tick', { n }));
    await sleep(300);
    write(app('shop', 'shop-secret-2') + app('blog', 'blog-secret') + app('wiki', 'wiki-secret'));
    hup();
    await waitFor(async () => {
      try { await newApi(0).trigger('private-orders', 'tick', { n: -1 }); return true; } catch { return false; }
    }, { timeout: 5000, what: 'the new secret accepted' });
    await sleep(500);
    await traffic.stop();
    assert.deepEqual(traffic.failures, [], 'nothing signed with the old secret failed during the overlap');
    // A connection from before the rotation subscribes with either secret; so does a new one.
    await watcher.subscribePrivate('private-a', { key: 'shop-key', secret: 'shop-secret-2' });
    await watcher.subscribePrivate('private-b', { key: 'shop-key', secret: 'shop-secret-1' });
    await waitFor(() => watcher.frames.filter((f) => f.event === 'tick').length >= traffic.sent, { timeout: 5000, what: 'every tick delivered' });
    // After the overlap, the old secret is refused everywhere.
    await sleep(OVERLAP_SECS * 1000);
    for (const n of [0, 1, 2]) {
      await assert.rejects(oldApi(n).trigger('orders', 'late', {}), (e) => e.status === 401, `node ${n}`);
    }
    const late = await rawClient(cluster.nodes[2].port, 'shop-key');
    await late.subscribePrivate('private-d', { key: 'shop-key', secret: 'shop-secret-2' });
  });

  e2e('a disabled app\'s clients are closed with 4003; new ones and its HTTP API are refused', async () => {
    const clients = await Promise.all(cluster.nodes.map((n) => rawClient(n.port, 'wiki-key')));
    await Promise.all(clients.map((c) => c.subscribeOk('pages')));
    write(app('shop', 'shop-secret-2') + app('blog', 'blog-secret') + app('wiki', 'wiki-secret', 'enabled = false'));
    hup();
    for (const c of clients) {
      const closed = await c.waitClosed(5000);
      assert.deepEqual(closed, { code: 4003, reason: 'App disabled' });
    }
    const again = await rawClient(cluster.nodes[0].port, 'wiki-key', undefined, { established: false });
    assert.equal((await again.waitClosed()).code, 4003);
    await assert.rejects(pusherServer(cluster.nodes[1].port, { appId: 'wiki', key: 'wiki-key', secret: 'wiki-secret' })
      .trigger('pages', 'x', {}), (e) => e.status === 403);
    // Removing an app from the file closes its clients too.
    const blog = await rawClient(cluster.nodes[2].port, 'blog-key');
    write(app('shop', 'shop-secret-2'));
    hup();
    assert.equal((await blog.waitClosed(5000)).code, 4003);
  });

  e2e('a file that does not load keeps the running apps and the log says what is wrong', async () => {
    const before = await reloads(cluster.nodes[0], 'error');
    write(`${app('shop', 'shop-secret-2')}max_presence_memberz = 3\n`);
    hup();
    await waitFor(async () => (await reloads(cluster.nodes[0], 'error')) > before, { timeout: 5000, what: 'a failed reload counted' });
    await waitFor(() => /configuration not reloaded, the running apps are kept: .*unknown field `max_presence_memberz`/.test(cluster.nodes[0].logs()),
      { timeout: 5000, what: 'the log line' });
    const shop = await rawClient(cluster.nodes[0].port, 'shop-key');
    await shop.subscribePrivate('private-still', { key: 'shop-key', secret: 'shop-secret-2' });
    // A file emptied (as a writer that truncates first leaves it for a moment) is not applied by the watcher.
    write('# nothing yet\n');
    await waitFor(() => /the config file has no app left; send SIGHUP to apply it anyway/.test(cluster.nodes[1].logs()),
      { timeout: 8000, what: 'the empty file refused' });
    assert.equal(shop.closeCode, undefined, 'the app\'s client is still connected');
    write(app('shop', 'shop-secret-2'));
  });
});
