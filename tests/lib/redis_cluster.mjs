// A real Redis Cluster for tests: three primaries and three replicas (redis-server with cluster-enabled, joined
// by `redis-cli --cluster create`), on free loopback ports whose cluster bus ports (+10000) are free too, with
// a one-second node timeout so a killed primary's replica takes over within seconds. Stopped after the test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { waitFor } from './harness.mjs';
import { cli as plainCli, redisServer, portFree } from './redis_servers.mjs';

/** redis-cli's TLS and ACL arguments for a cluster started with `tls`. */
function tlsArgs(tls) {
  return tls ? ['--tls', '--cacert', tls.ca, '--user', tls.user, '--pass', tls.password, '--no-auth-warning'] : [];
}

function run(args, timeout = 30000) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${stderr || stdout || err.message}`));
      else resolve(stdout);
    });
  });
}

/** A port in 20000-29999 free together with its cluster bus port. */
async function clusterPort(taken) {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (!taken.has(port) && await portFree(port) && await portFree(port + 10000)) {
      taken.add(port);
      return port;
    }
  }
}

/** The live primaries as one node sees them (`CLUSTER NODES`): [{ id, port, slots: ['0-5460', ...] }]. */
async function slotsFrom(cli, port) {
  const nodes = await cli(port, 'cluster', 'nodes');
  if (!nodes) return null;
  return nodes.split('\n').filter((l) => l.includes('master') && !l.includes('fail')).map((line) => {
    const [id, addr, , , , , , , ...slots] = line.trim().split(' ');
    return { id, port: Number(addr.split(':')[1].split('@')[0]), slots: slots.filter((s) => /^\d/.test(s)) };
  });
}

/**
 * startRedisCluster({ replicas = 1, tls = null }): three primaries, each with `replicas` replicas. With
 * tls = { ca, cert, key, user, password }, every node speaks TLS only (clients, the cluster bus and
 * replication), the default user is off and `user` is the one ACL user.
 */
export async function startRedisCluster({ replicas = 1, tls = null } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-cluster-'));
  const taken = new Set();
  const servers = [];
  const cli = tls ? (port, ...args) => plainCli(port, ...tlsArgs(tls), ...args) : plainCli;
  const security = tls ? [
    '--tls-cluster', 'yes', '--tls-replication', 'yes', '--tls-auth-clients', 'no',
    '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca,
    '--user', 'default', 'off', '--user', tls.user, 'on', `>${tls.password}`, '~*', '&*', '+@all',
    '--masteruser', tls.user, '--masterauth', tls.password,
  ] : [];
  for (let i = 0; i < 3 * (1 + replicas); i++) {
    const port = await clusterPort(taken);
    servers.push(await redisServer((p) => [
      ...(tls ? ['--port', '0', '--tls-port', String(p)] : ['--port', String(p)]),
      '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`, '--cluster-node-timeout', '1000',
      ...security,
    ], 'Redis Cluster node', port, cli));
  }
  await run([...tlsArgs(tls), '--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`),
    '--cluster-replicas', String(replicas), '--cluster-yes']);
  await waitFor(async () => {
    for (const s of servers) {
      if (!/cluster_state:ok/.test((await cli(s.port, 'cluster', 'info')) ?? '')) return false;
    }
    const primaries = await slotsFrom(cli, servers[0].port);
    return primaries?.length === 3;
  }, { timeout: 30000, what: 'the Redis Cluster to form (state ok, three primaries)' });
  // Every replica synced with its primary, so a failover finds the data there.
  await waitFor(async () => {
    for (const s of servers) {
      const info = (await cli(s.port, 'info', 'replication')) ?? '';
      if (/role:slave/.test(info) && !/master_link_status:up/.test(info)) return false;
    }
    return true;
  }, { timeout: 30000, what: 'the replicas to sync' });
  const alive = new Set(servers);
  return {
    servers,
    url: `${tls ? `rediss+cluster://${tls.user}:${tls.password}@` : 'redis+cluster://'}${servers.slice(0, 3).map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    cli,
    /** A live node's port, to run redis-cli or Laravel's broadcaster against. */
    anyPort() { return [...alive][0].port; },
    /** The primaries as a live node sees them: [{ id, port, slots }]. */
    primaries() { return slotsFrom(cli, [...alive][0].port); },
    /** The port of the primary holding `key`'s slot now. */
    async ownerOf(key) {
      const slot = Number(await cli(this.anyPort(), 'cluster', 'keyslot', key));
      const primaries = await this.primaries();
      const holds = (range) => {
        const [from, to] = range.split('-').map(Number);
        return slot >= from && slot <= (to ?? from);
      };
      return primaries.find((p) => p.slots.some(holds))?.port ?? null;
    },
    /**
     * Moves the slot of `key` to the primary on `toPort` the way `redis-cli --cluster reshard` moves each slot:
     * IMPORTING on the target, MIGRATING on the source, MIGRATE of the slot's keys in batches, then the new
     * owner announced to every primary. Resolves to { slot, from, to }.
     */
    async moveSlot(key, toPort) {
      const any = this.anyPort();
      const slot = Number(await cli(any, 'cluster', 'keyslot', key));
      const fromPort = await this.ownerOf(key);
      if (fromPort === toPort) return { slot, from: fromPort, to: toPort };
      const fromId = await cli(fromPort, 'cluster', 'myid');
      const toId = await cli(toPort, 'cluster', 'myid');
      const must = async (port, ...args) => {
        const out = await cli(port, ...args);
        if (out === null || /^(ERR|\(error\))/.test(out)) throw new Error(`redis-cli -p ${port} ${args.join(' ')}: ${out}`);
        return out;
      };
      await must(toPort, 'cluster', 'setslot', String(slot), 'importing', fromId);
      await must(fromPort, 'cluster', 'setslot', String(slot), 'migrating', toId);
      for (;;) {
        const keys = (await must(fromPort, 'cluster', 'getkeysinslot', String(slot), '100')).split('\n').filter(Boolean);
        if (keys.length === 0) break;
        await must(fromPort, 'migrate', '127.0.0.1', String(toPort), '', '0', '5000', 'KEYS', ...keys);
      }
      for (const p of await this.primaries()) await must(p.port, 'cluster', 'setslot', String(slot), 'node', toId);
      return { slot, from: fromPort, to: toPort };
    },
    /** kill -9 the node on `port`. */
    kill9(port) {
      const server = servers.find((s) => s.port === port);
      alive.delete(server);
      server.kill9();
    },
    async stop() {
      for (const s of servers) await s.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
