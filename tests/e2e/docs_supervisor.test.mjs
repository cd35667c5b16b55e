// The Supervisor block in docs/operations.md, run for real: taken from the page (only the binary path, the
// port and the log file adapted), run by supervisord, and used by pusher-js; then supervisord stops it with
// the documented signal and the node drains and exits.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  e2e, freePort, waitFor, readyzStatus, spawnTracked, stopChild, makeEcho, echoConnected, docsBlock, HERALD_BIN,
} from '../lib/harness.mjs';

const skip = !fs.existsSync('/usr/bin/supervisord') && 'supervisord is not installed';

describe('docs/operations.md: the Supervisor block', { skip }, () => {
  let supervisord; let dir; let port;
  before(async () => {
    port = await freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-supervisor-'));
    const program = docsBlock('operations.md', /```ini\n(; \/etc\/supervisor[\s\S]*?)```/)
      .replace('command=/usr/local/bin/herald', `command=${path.resolve(HERALD_BIN)}`)
      .replace('HERALD_PORT="6001"', `HERALD_PORT="${port}"`)
      .replace('stdout_logfile=/var/log/herald.log', `stdout_logfile=${dir}/herald.log`);
    assert.match(program, new RegExp(`HERALD_PORT="${port}"`), 'the port line was found and adapted');
    fs.writeFileSync(path.join(dir, 'supervisord.conf'), [
      '[supervisord]', 'nodaemon=true', `logfile=${dir}/supervisord.log`, `pidfile=${dir}/supervisord.pid`, 'user=root',
      '[unix_http_server]', `file=${dir}/supervisor.sock`,
      '[rpcinterface:supervisor]', 'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
      program, '',
    ].join('\n'));
    supervisord = spawnTracked('/usr/bin/supervisord', ['-c', path.join(dir, 'supervisord.conf')], { stdio: 'ignore' });
    await waitFor(async () => (await readyzStatus(port)) === 200, { timeout: 20000, what: `herald under supervisord on ${port}` });
  });
  after(async () => {
    if (supervisord) await stopChild(supervisord, { graceMs: 25000 });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  e2e('supervisord starts the node as documented; pusher-js connects with the documented app key', async () => {
    const echo = makeEcho({ port, key: 'app-key', secret: 'change-me' });
    await echoConnected(echo);
    echo.disconnect();
    const log = fs.readFileSync(path.join(dir, 'herald.log'), 'utf8');
    assert.match(log, /"herald listening"/, 'the node logs in JSON to the documented file');
  });
});
