// The `herald` subcommands as a developer runs them: `send` reaches a pusher-js client (and a wrong secret is
// told apart), `tail` prints the console filtered, `check` reports the node, Redis and the app's real
// Laravel auth endpoint, and `print-config --laravel` prints the .env lines.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  e2e, startHerald, startRedis, freePort, waitFor, recorder, Pusher, APP_KEY, HERALD_BIN, LARAVEL_FALLBACKS,
  APP_ID, APP_SECRET,
} from '../lib/harness.mjs';
import { startAuthApp } from '../lib/authapp.mjs';

const TOKEN = 'cli-test-dashboard-token-77';

/** Runs `herald <args>` with the test server's settings; resolves with its exit code and output. */
function herald(args, env = {}, { timeout = 15000 } = {}) {
  const fullEnv = { ...process.env, ...env };
  for (const name of LARAVEL_FALLBACKS) if (!(name in env)) delete fullEnv[name];
  if (!('HERALD_REDIS_URL' in env)) delete fullEnv.HERALD_REDIS_URL;
  return new Promise((resolve, reject) => {
    const child = spawn(HERALD_BIN, args, { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`herald ${args.join(' ')} hung:\n${out}`)); }, timeout);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe('herald subcommands', () => {
  let server;
  let env;
  let pusher;

  before(async () => {
    server = await startHerald({ env: { HERALD_DASHBOARD_TOKEN: TOKEN } });
    env = {
      HERALD_HOST: '127.0.0.1', HERALD_PORT: String(server.port), HERALD_APP_ID: APP_ID, HERALD_APP_KEY: APP_KEY,
      HERALD_APP_SECRET: APP_SECRET, HERALD_DASHBOARD_TOKEN: TOKEN,
    };
    pusher = new Pusher(APP_KEY, {
      wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false, enabledTransports: ['ws'], cluster: 'mt1', disableStats: true,
    });
    await waitFor(() => pusher.connection.state === 'connected', { timeout: 10000, what: 'pusher-js to connect' });
  });

  after(async () => {
    pusher?.disconnect();
    await server?.stop();
  });

  e2e('herald send delivers through the HTTP API; a wrong secret is refused with the reason', async () => {
    const channel = pusher.subscribe('news');
    await new Promise((resolve) => channel.bind('pusher:subscription_succeeded', resolve));
    const got = recorder();
    channel.bind('headline', got.fn);
    const sent = await herald(['send', 'news', 'headline', '{"title":"from the terminal"}'], env);
    assert.equal(sent.code, 0, sent.out);
    assert.match(sent.out, /sent headline to news \(app app-id, HTTP 200\)/);
    assert.deepEqual(await got.next(1), { title: 'from the terminal' });

    const wrong = await herald(['send', 'news', 'headline'], { ...env, HERALD_APP_SECRET: 'not-the-secret' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.out, /not sent: HTTP 401 .*signature/i);
    const notJson = await herald(['send', 'news', 'headline', '{oops'], env);
    assert.equal(notJson.code, 2);
    assert.match(notJson.out, /is not JSON/);
    assert.equal(got.count, 1);
  });

  e2e('herald tail prints the console, filtered by channel', async () => {
    const tail = spawn(HERALD_BIN, ['tail', '--channel', 'orders'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    tail.stdout.on('data', (d) => { out += d; });
    tail.stderr.on('data', (d) => { out += d; });
    try {
      await waitFor(() => /following app app-id/.test(out), { timeout: 10000, what: 'herald tail to start' });
      // The node looks for watchers once a second: send until the first entry shows.
      await waitFor(async () => {
        await herald(['send', 'orders', 'OrderShipped', '{"id":5}'], env);
        return /api event OrderShipped on orders \{"id":5\} \(8 bytes\)/.test(out);
      }, { timeout: 10000, interval: 300, what: 'the event in herald tail' });
      await herald(['send', 'other', 'Ignored'], env);
      await herald(['send', 'orders', 'Last'], env);
      await waitFor(() => /api event Last on orders/.test(out), { timeout: 5000, what: 'the last event' });
      assert.doesNotMatch(out, /Ignored/, 'the channel filter leaves out other channels');
      assert.match(out, /^\d\d:\d\d:\d\d\.\d{3}Z embedded api event/m);
    } finally {
      tail.kill('SIGTERM');
    }
    const noToken = await herald(['tail'], { ...env, HERALD_DASHBOARD_TOKEN: '' });
    assert.equal(noToken.code, 2);
    assert.match(noToken.out, /no dashboard token: set HERALD_DASHBOARD_TOKEN/);
    const wrong = await herald(['tail', '--token', 'wrong-token-wrong-token'], env);
    assert.match(wrong.out, /answered 401 \(the token is not the one the nodes use/);
  });

  e2e('herald check: the node, Redis, and what the app\'s Laravel auth endpoint answers', async () => {
    const fine = await herald(['check'], env);
    assert.equal(fine.code, 0, fine.out);
    assert.match(fine.out, /^ok {4}configuration: valid; apps app-id \(key app-key\)$/m);
    assert.match(fine.out, /^ok {4}Redis: not used \(embedded mode/m);
    assert.match(fine.out, new RegExp(`^ok {4}node: http://127.0.0.1:${server.port} is up and ready$`, 'm'));

    const nobody = await freePort();
    const down = await herald(['check'], { ...env, HERALD_PORT: String(nobody), HERALD_REDIS_URL: `redis://127.0.0.1:${nobody}` });
    assert.equal(down.code, 1);
    assert.match(down.out, new RegExp(`^FAIL {2}Redis: 127.0.0.1:${nobody}: .*refused`, 'mi'));
    assert.match(down.out, /^FAIL {2}node: nothing answers at .*is herald running\?/m);

    const redis = await startRedis();
    const app = await startAuthApp();
    try {
      const authEnv = { ...env, HERALD_REDIS_URL: redis.url, HERALD_AUTH_URL: `${app.url}/broadcasting/auth` };
      const anonymous = await herald(['check', '--auth', '--channel', 'private-orders.1'], authEnv);
      assert.match(anonymous.out, /^ok {4}Redis: 127.0.0.1:\d+: Redis \d+\.\d+\.\d+, primary$/m);
      assert.match(anonymous.out, /^ok {4}app app-id: reads Laravel's broadcasts on Redis channels prefixed laravel_database_/m);
      assert.match(anonymous.out, /^ok {4}auth URL of app app-id: .* answered 403 for private-orders.1 without a session/m);
      const user = await herald(['check', '--auth', '--channel', 'private-orders.1', '--cookie', 'laravel_session=1'], authEnv);
      // Laravel's RedisBroadcaster answers `true` for a private channel it allows; Herald signs.
      assert.match(user.out, /^ok {4}auth URL of app app-id: .* allows private-orders.1 \(answered 200 true; Herald signs the subscription\)$/m);
      const presence = await herald(['check', '--auth', '--channel', 'presence-chat.1', '--cookie', 'laravel_session=2'], authEnv);
      assert.match(presence.out, /answered 200 for presence-chat.1: \{"channel_data":\{"user_id":2,"user_info":\{"id":2,"name":"Bob"\}\}\}$/m);
      const other = await herald(['check', '--auth', '--channel', 'private-orders.2', '--cookie', 'laravel_session=1'], authEnv);
      assert.equal(other.code, 1);
      assert.match(other.out, /^FAIL {2}auth URL of app app-id: .*refused private-orders.2 \(403\) even with the session cookie: check the channel's callback in routes\/channels.php$/m);
      const missing = await herald(['check', '--auth'], { ...authEnv, HERALD_AUTH_URL: `${app.url}/no/such/path` });
      assert.match(missing.out, /answered 404: Laravel serves \/broadcasting\/auth only with broadcasting enabled/);
    } finally {
      await app.stop();
      await redis.stop();
    }
  });

  e2e('herald print-config --laravel prints the .env lines for this configuration', async () => {
    const printed = await herald(['print-config', '--laravel'], env);
    assert.equal(printed.code, 0, printed.out);
    assert.match(printed.out, /REVERB_APP_KEY=app-key/);
    assert.match(printed.out, new RegExp(`PUSHER_PORT=${server.port}`));
  });
});
