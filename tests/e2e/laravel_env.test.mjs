// Laravel's own settings as fallbacks (REVERB_SERVER_*, REVERB_APP_*, REDIS_*, APP_NAME), configuration
// errors that name what the user set, and Reverb's host-only allowed_origins.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  e2e, spawnTracked, stopChild, freePort, waitFor, readyzStatus, startRedis, startHerald, rawClient, dataOf,
  HERALD_BIN, makeEcho, echoConnected,
} from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';

const skip = process.env.HERALD_TEST_MODE === 'embedded' && 'HERALD_TEST_MODE=embedded';
const base = () => ({ PATH: process.env.PATH, HOME: process.env.HOME ?? '/tmp', RUST_LOG: 'info' });

/** Runs herald with exactly `env` (plus PATH); resolves {code, stderr} once it exits (a bad config exits). */
function runHerald(env) {
  return new Promise((resolve) => {
    execFile(HERALD_BIN, [], { env: { ...base(), ...env }, timeout: 10000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stderr: String(stderr) });
    });
  });
}

describe('Laravel\'s own settings', { skip }, () => {
  let redis;
  before(async () => { redis = await startRedis(); });
  after(async () => { await redis?.stop(); });

  e2e('REVERB_SERVER_*, REVERB_APP_*, REDIS_HOST/PORT and APP_NAME are used when Herald\'s are unset, and said at start', async () => {
    const port = await freePort();
    let logs = '';
    const child = spawnTracked(HERALD_BIN, [], {
      env: {
        ...base(),
        REVERB_SERVER_HOST: '127.0.0.1',
        REVERB_SERVER_PORT: String(port),
        REVERB_APP_ID: 'reverb-id',
        REVERB_APP_KEY: 'reverb-key',
        REVERB_APP_SECRET: 'reverb-secret',
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(redis.port),
        REDIS_PASSWORD: 'null',
        APP_NAME: 'My Shop',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr.on('data', (d) => { logs += d; });
    try {
      await waitFor(async () => (await readyzStatus(port)) === 200, { timeout: 15000, what: `herald on REVERB_SERVER_PORT ${port}` });
      assert.match(logs, new RegExp(`from Laravel's settings: port ${port} from REVERB_SERVER_PORT`));
      assert.match(logs, /from Laravel's settings: Redis from REDIS_HOST\/REDIS_PORT\/REDIS_USERNAME\/REDIS_PASSWORD\/REDIS_DB/);
      assert.match(logs, /from Laravel's settings: Laravel's Redis prefix my_shop_database_ and my-shop-database- from APP_NAME/);
      assert.match(logs, /from Laravel's settings: app reverb-id \(key reverb-key\) from REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET/);
      assert.match(logs, /mode="redis"/);
      const client = await rawClient(port, 'reverb-key');
      await client.subscribeOk('orders');
      await laravelBroadcast(redis.port, { prefix: 'my_shop_database_', channels: [{ type: 'public', name: 'orders' }], data: { id: 7 } });
      const f = await client.next('App\\Events\\OrderShipped');
      assert.equal(dataOf(f).id, 7);
      // Laravel 13's default form of the same name.
      await laravelBroadcast(redis.port, { prefix: 'my-shop-database-', channels: [{ type: 'public', name: 'orders' }], data: { id: 13 } });
      await client.next((x) => x.event === 'App\\Events\\OrderShipped' && dataOf(x).id === 13);
      client.ws.close();
    } finally {
      await stopChild(child);
    }
  });

  e2e('herald print-config prints the .env and Echo values the server really uses, and they connect', async () => {
    const port = await freePort();
    const env = {
      REVERB_SERVER_PORT: String(port), REVERB_SERVER_HOST: '127.0.0.1', REVERB_APP_ID: 'shop', REVERB_APP_KEY: 'shop-key',
      REVERB_APP_SECRET: 'shop-secret', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), HERALD_AUTH_URL: 'http://127.0.0.1:9/broadcasting/auth',
    };
    const printed = await new Promise((resolve, reject) => {
      execFile(HERALD_BIN, ['print-config'], { env: { ...base(), ...env }, timeout: 10000 }, (err, stdout) => (err ? reject(err) : resolve(String(stdout))));
    });
    const value = (name) => new RegExp(`^  ${name}=(.*)$`, 'm').exec(printed)?.[1];
    assert.equal(value('REVERB_APP_KEY'), 'shop-key');
    assert.equal(value('REVERB_PORT'), String(port));
    assert.equal(value('PUSHER_APP_ID'), 'shop');
    assert.equal(value('PUSHER_HOST'), '127.0.0.1');
    assert.match(printed, /BROADCAST_DRIVER=redis/);
    assert.match(printed, new RegExp(`authEndpoint 'http://127\\.0\\.0\\.1:${port}/herald/auth/shop-key'; Herald forwards the browser's auth requests to http://127\\.0\\.0\\.1:9/broadcasting/auth`));
    const child = spawnTracked(HERALD_BIN, [], { env: { ...base(), ...env }, stdio: 'ignore' });
    try {
      await waitFor(async () => (await readyzStatus(port)) === 200, { timeout: 15000, what: 'herald on the printed port' });
      const echo = makeEcho({ port: Number(value('REVERB_PORT')), key: value('REVERB_APP_KEY'), secret: 'shop-secret' });
      await echoConnected(echo);
      echo.disconnect();
    } finally {
      await stopChild(child);
    }
  });

  e2e('configuration errors name the variable the user set, show the value (password masked) and an example, and exit 2', async () => {
    const cases = [
      [{ HERALD_PORT: 'abc' }, 'herald: configuration error: HERALD_PORT="abc" is not valid: invalid digit found in string; see herald --help for HERALD_PORT'],
      [{ REVERB_SERVER_PORT: 'eighty' }, 'herald: configuration error: REVERB_SERVER_PORT="eighty" is not a port number; for example REVERB_SERVER_PORT=8080'],
      [{ HERALD_REDIS_URL: 'localhost:6379' }, 'herald: configuration error: HERALD_REDIS_URL: "localhost:6379" has no scheme; expected redis://[user:password@]host:6379[/db], rediss://… for TLS, redis+sentinel://host1:26379,host2:26379/mymaster[/db], or redis+cluster://host1:7000,host2:7001 (rediss+sentinel:// and rediss+cluster:// for TLS)'],
      [{ HERALD_REDIS_URL: 'http://app:hunter2@redis:6379' }, 'herald: configuration error: HERALD_REDIS_URL: "http://app:***@redis:6379": http:// is not a Redis scheme; expected redis://'],
      [{ REDIS_URL: 'redis://redis:63a9' }, 'herald: configuration error: REDIS_URL: "redis://redis:63a9": the port "63a9" is not a number; expected redis://'],
      [{ REDIS_HOST: 'redis', REDIS_PORT: 'six' }, 'herald: configuration error: REDIS_PORT="six" is not a port number; for example REDIS_PORT=6379'],
    ];
    for (const [env, expected] of cases) {
      const { code, stderr } = await runHerald(env);
      assert.equal(code, 2, `${JSON.stringify(env)}: exit code`);
      assert.ok(stderr.startsWith(expected), `${JSON.stringify(env)}:\n  got      ${stderr}\n  expected ${expected}`);
      assert.doesNotMatch(stderr, /hunter2/);
    }
  });
});

describe('allowed_origins as Reverb writes them', () => {
  let herald;
  before(async () => { herald = await startHerald({ env: { HERALD_ALLOWED_ORIGINS: 'shop.example.com,*.staging.test' } }); });
  after(async () => { await herald?.stop(); });

  e2e('a host name admits its site on any scheme and port; another origin is refused with 4009 and a log line', async () => {
    for (const origin of ['https://shop.example.com', 'http://shop.example.com:8000', 'https://eu.staging.test']) {
      const ok = await rawClient(herald.port, undefined, undefined, { headers: { Origin: origin } });
      ok.ws.close();
    }
    const refused = await rawClient(herald.port, undefined, undefined, { established: false, headers: { Origin: 'https://shop.example.com.evil.test' } });
    const closed = await refused.waitClosed(5000);
    assert.equal(closed.code, 4009);
    await waitFor(() => /its Origin is not in the app's allowed_origins \(HERALD_ALLOWED_ORIGINS\)/.test(herald.logs()), { timeout: 3000, what: 'the refusal in the log' });
    assert.match(herald.logs(), /origin="https:\/\/shop\.example\.com\.evil\.test"/);
  });
});
