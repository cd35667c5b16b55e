// Redis with Sentinel for tests: one primary, one replica and three sentinels, all real redis-server
// processes on free loopback ports (never 6379), stopped after the test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './harness.mjs';
import { cli, redisServer } from './redis_servers.mjs';

export const MASTER = 'mymaster';

/** Starts the primary, the replica and three sentinels; resolves once the sentinels see both and each other. */
export async function startSentinelRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-sentinel-'));
  const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const primary = await redisServer((p) => ['--port', String(p), ...base], 'Redis primary');
  const replica = await redisServer((p) => ['--port', String(p), ...base, '--replicaof', '127.0.0.1', String(primary.port)], 'Redis replica');
  await waitFor(async () => /master_link_status:up/.test((await cli(replica.port, 'info', 'replication')) ?? ''),
    { timeout: 10000, what: 'the replica to sync' });
  const sentinels = [];
  for (let i = 0; i < 3; i++) {
    sentinels.push(await redisServer((p) => {
      const conf = path.join(dir, `sentinel-${p}.conf`);
      fs.writeFileSync(conf, [
        `port ${p}`, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${MASTER} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 5000`,
        `sentinel parallel-syncs ${MASTER} 1`, '',
      ].join('\n'));
      return [conf, '--sentinel'];
    }, 'Redis sentinel'));
  }
  await waitFor(async () => {
    for (const s of sentinels) {
      const info = (await cli(s.port, 'sentinel', 'master', MASTER)) ?? '';
      const field = (name) => { const lines = info.split('\n'); const i = lines.indexOf(name); return i >= 0 ? lines[i + 1] : null; };
      if (field('num-slaves') !== '1' || field('num-other-sentinels') !== '2') return false;
    }
    return true;
  }, { timeout: 20000, what: 'the sentinels to see the replica and each other' });
  const servers = { primary, replica };
  return {
    sentinels,
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${MASTER}`,
    /** The port the sentinels name as primary now. */
    async primaryPort() {
      const out = await cli(sentinels[0].port, 'sentinel', 'get-master-addr-by-name', MASTER);
      return out ? Number(out.split('\n')[1]) : null;
    },
    get primary() { return servers.primary; },
    get replica() { return servers.replica; },
    cli,
    async stop() {
      for (const s of [...sentinels, servers.primary, servers.replica]) await s.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
