// A Herald cluster for tests: one redis-server, N herald nodes, and haproxy in front of them (round robin,
// health-checked on /readyz), all on loopback and all stopped after the test.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis, startHerald, freePort, waitFor, readyzStatus, httpGet, rawClient, sleep } from './harness.mjs';

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

/** Starts haproxy balancing over `ports`; resolves once it answers /readyz through a backend. */
export async function startHaproxy(ports) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-haproxy-'));
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    'frontend herald',
    `  bind 127.0.0.1:${port}`,
    '  default_backend nodes',
    'backend nodes',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    ...ports.map((p, i) => `  server n${i} 127.0.0.1:${p} check inter 300 fall 2 rise 1`),
    '',
  ].join('\n'));
  let logs = '';
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${logs}`);
    return (await readyzStatus(port)) === 200;
  }, { timeout: 10000, what: 'haproxy to serve /readyz' });
  return {
    port,
    logs: () => logs,
    async stop() {
      children.delete(child);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Redis + `n` nodes (+ haproxy when `lb`). */
export async function startCluster({ n = 3, env = {}, lb = true } = {}) {
  const redis = await startRedis();
  const nodes = [];
  for (let i = 0; i < n; i++) nodes.push(await startHerald({ redisUrl: redis.url, env }));
  const haproxy = lb ? await startHaproxy(nodes.map((h) => h.port)) : null;
  return {
    redis,
    nodes,
    haproxy,
    async addNode(extraEnv = {}) {
      const h = await startHerald({ redisUrl: redis.url, env: { ...env, ...extraEnv } });
      nodes.push(h);
      return h;
    },
    async allReady(timeout = 15000) {
      await waitFor(async () => {
        const statuses = await Promise.all(nodes.filter((h) => h.alive()).map((h) => readyzStatus(h.port)));
        return statuses.every((s) => s === 200);
      }, { timeout, what: 'every node ready' });
    },
    async stop() {
      if (haproxy) await haproxy.stop();
      for (const h of nodes) if (h.alive()) await h.stop();
      await redis.stop();
    },
  };
}

export { httpGet };

/** True when every node in `nodes` establishes a connection with the app key `key` (each closed again). */
export async function acceptedByEveryNode(nodes, key) {
  for (const n of nodes) {
    const c = await rawClient(n.port, key, undefined, { established: false });
    const first = await Promise.race([c.next('pusher:connection_established', 3000).then(() => 'ok'), c.closed.then((x) => x.code)]);
    c.close();
    if (first !== 'ok') return false;
  }
  return true;
}

/**
 * Steady traffic while something changes underneath: `publish(i)` sends the i-th event, one every 50 ms, until
 * `stop()`. `sent` counts what was accepted and `failures` holds each refusal's status (or message).
 */
export function steadyTraffic(publish) {
  const traffic = { sent: 0, failures: [], stopped: false };
  const running = (async () => {
    while (!traffic.stopped) {
      try {
        await publish(traffic.sent);
        traffic.sent += 1;
      } catch (e) {
        traffic.failures.push(e.status ?? e.message);
      }
      await sleep(50);
    }
  })();
  traffic.stop = async () => {
    traffic.stopped = true;
    await running;
  };
  return traffic;
}
