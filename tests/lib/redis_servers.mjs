// Real redis-server processes for the Sentinel and Cluster tests, on free loopback ports, stopped after the test.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { spawnTracked, stopChild, freePort, waitFor } from './harness.mjs';

/** redis-cli against one local port; resolves to its output, or null when it failed. */
export function cli(port, ...args) {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 2000 }, (err, stdout) => {
      resolve(err ? null : stdout.trim());
    });
  });
}

/**
 * Starts one redis-server with `args(port)` on `port`, or a free port (never 6379 or 26379); resolves once it
 * answers `ping` through `ask` (redis-cli by default; a TLS server needs its own).
 */
export async function redisServer(args, what, port = null, ask = cli) {
  while (port === null || port === 6379 || port === 26379) port = await freePort();
  let logs = '';
  const child = spawnTracked('redis-server', [...args(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`${what} exited: ${logs}`);
    return (await ask(port, 'ping')) === 'PONG';
  }, { timeout: 10000, what: `${what} on port ${port}` });
  return { port, child, logs: () => logs, kill9: () => child.kill('SIGKILL'), stop: () => stopChild(child) };
}


/** True when `port` can be listened on at 127.0.0.1 now. */
export function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
