// Redis with Sentinel for tests: one primary, one replica and three sentinels, all real redis-server
// processes on free loopback ports (never 6379), stopped after the test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './harness.mjs';
import { cli, redisServer } from './redis_servers.mjs';

export const MASTER = 'mymaster';

/**
 * Starts the primary, the replica and three sentinels; resolves once the sentinels see both and each other.
 * With tls = { ca, cert, key, password, sentinelPassword }, every server speaks TLS only, the primary and
 * the replica ask for `password`, and the sentinels for `sentinelPassword`.
 */
export async function startSentinelRedis({ tls = null } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-sentinel-'));
  const tlsFiles = tls ? ['--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca,
    '--tls-auth-clients', 'no', '--tls-replication', 'yes'] : [];
  const listen = (p) => (tls ? ['--port', '0', '--tls-port', String(p)] : ['--port', String(p)]);
  const ask = (password) => (tls ? (port, ...args) => cli(port, '--tls', '--cacert', tls.ca, '-a', password, '--no-auth-warning', ...args) : cli);
  const data = ask(tls?.password);
  const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...tlsFiles,
    ...(tls ? ['--requirepass', tls.password, '--masterauth', tls.password] : [])];
  const primary = await redisServer((p) => [...listen(p), ...base], 'Redis primary', null, data);
  const replica = await redisServer((p) => [...listen(p), ...base, '--replicaof', '127.0.0.1', String(primary.port)], 'Redis replica', null, data);
  await waitFor(async () => /master_link_status:up/.test((await data(replica.port, 'info', 'replication')) ?? ''),
    { timeout: 10000, what: 'the replica to sync' });
  const sentinelCli = ask(tls?.sentinelPassword);
  const sentinels = [];
  for (let i = 0; i < 3; i++) {
    sentinels.push(await redisServer((p) => {
      const conf = path.join(dir, `sentinel-${p}.conf`);
      fs.writeFileSync(conf, [
        ...(tls ? ['port 0', `tls-port ${p}`, `tls-cert-file ${tls.cert}`, `tls-key-file ${tls.key}`,
          `tls-ca-cert-file ${tls.ca}`, 'tls-auth-clients no', 'tls-replication yes',
          `requirepass ${tls.sentinelPassword}`] : [`port ${p}`]),
        'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${MASTER} 127.0.0.1 ${primary.port} 2`,
        ...(tls ? [`sentinel auth-pass ${MASTER} ${tls.password}`, `sentinel sentinel-pass ${tls.sentinelPassword}`] : []),
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 5000`,
        `sentinel parallel-syncs ${MASTER} 1`, '',
      ].join('\n'));
      return [conf, '--sentinel'];
    }, 'Redis sentinel', null, sentinelCli));
  }
  await waitFor(async () => {
    for (const s of sentinels) {
      const info = (await sentinelCli(s.port, 'sentinel', 'master', MASTER)) ?? '';
      const field = (name) => { const lines = info.split('\n'); const i = lines.indexOf(name); return i >= 0 ? lines[i + 1] : null; };
      if (field('num-slaves') !== '1' || field('num-other-sentinels') !== '2') return false;
    }
    return true;
  }, { timeout: 20000, what: 'the sentinels to see the replica and each other' });
  const servers = { primary, replica };
  return {
    sentinels,
    url: tls
      ? `rediss+sentinel://:${tls.password}@${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${MASTER}?sentinel_password=${tls.sentinelPassword}`
      : `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${MASTER}`,
    /** The port the sentinels name as primary now. */
    async primaryPort() {
      const out = await sentinelCli(sentinels[0].port, 'sentinel', 'get-master-addr-by-name', MASTER);
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
