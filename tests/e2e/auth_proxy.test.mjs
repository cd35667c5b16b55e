// Apps on BROADCAST_DRIVER=redis: Laravel's own RedisBroadcaster::auth (through php's built-in server)
// answers unsigned; Echo's authEndpoint points at Herald, which asks the app with the browser's cookies and
// signs only what the app granted. Private, presence, encrypted (decrypted by pusher-js) and sign-in.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, autoCloseClients, closeClients, startHerald, Echo, Pusher, echoSubscribed, recorder, waitFor,
  pusherServer, MASTER_KEY_B64, APP_KEY, httpGet,
} from '../lib/harness.mjs';
import { startAuthApp } from '../lib/authapp.mjs';
import http from 'node:http';

function echoFor(port, headers = {}) {
  const echo = new Echo({
    broadcaster: 'reverb',
    key: APP_KEY,
    wsHost: '127.0.0.1',
    wsPort: port,
    wssPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    Pusher,
    authEndpoint: `http://127.0.0.1:${port}/herald/auth/${APP_KEY}`,
    auth: { headers },
    userAuthentication: { endpoint: `http://127.0.0.1:${port}/herald/user-auth/${APP_KEY}`, headers },
  });
  return echo;
}

function subscriptionError(channel) {
  return waitFor(new Promise((resolve) => channel.error((err) => resolve(err))), { timeout: 10000, what: `an error on ${channel.name}` });
}

function post(port, path, body, headers, method = 'POST') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('auth endpoint for apps on the redis driver', () => {
  let app;
  let herald;
  const echos = [];
  before(async () => {
    app = await startAuthApp();
    herald = await startHerald({
      env: {
        HERALD_AUTH_URL: `${app.url}/broadcasting/auth`,
        HERALD_USER_AUTH_URL: `${app.url}/broadcasting/user-auth`,
        HERALD_ENCRYPTION_MASTER_KEY: MASTER_KEY_B64,
        HERALD_ALLOWED_ORIGINS: 'http://app.test',
      },
    });
  });
  after(async () => {
    for (const e of echos) e.disconnect();
    await closeClients();
    await herald?.stop();
    await app?.stop();
  });
  autoCloseClients();
  const make = (headers) => {
    const e = echoFor(herald.port, headers);
    echos.push(e);
    return e;
  };

  e2e('private and presence subscribe with the app\'s credentials; the app\'s 403 without them', async () => {
    const ada = make({ Authorization: 'Bearer user-1', 'X-CSRF-TOKEN': 'token-1' });
    await echoSubscribed(ada.private('orders.1'));
    const here = recorder();
    await echoSubscribed(ada.join('chat.lobby').here(here.fn));
    assert.deepEqual(await here.next(1), [{ id: 1, name: 'Ada' }]);
    const seen = app.requests().find((r) => JSON.stringify(r).includes('private-orders.1'));
    assert.ok(JSON.stringify(seen).includes('Bearer user-1'), `the credentials reached the app: ${JSON.stringify(seen)}`);
    assert.ok(JSON.stringify(seen).includes('token-1'), 'the CSRF header reached the app');

    const guest = make({});
    const err = await subscriptionError(guest.private('orders.1'));
    assert.equal(err.status, 403);
    // Nothing to say who the guest is: the log says why that usually happens (a cross-origin page without credentials).
    await waitFor(() => /refused an auth request that carried no Cookie and no Authorization header/.test(herald.logs()),
      { timeout: 3000, what: 'the hint in the log' });
    const bob = make({ Authorization: 'Bearer user-2' });
    assert.equal((await subscriptionError(bob.private('orders.1'))).status, 403, 'the app says no to Bob');
    const here2 = recorder();
    await echoSubscribed(bob.join('chat.lobby').here(here2.fn));
    assert.deepEqual((await here2.next(1)).map((u) => u.id).sort(), [1, 2]);
  });

  e2e('an encrypted channel: Herald hands out the shared secret, pusher-js decrypts what the SDK encrypted', async () => {
    const ada = make({ Authorization: 'Bearer user-1' });
    const rec = recorder();
    const ch = ada.encryptedPrivate('vault.1').listen('.secret', rec.fn);
    await echoSubscribed(ch);
    await pusherServer(herald.port).trigger('private-encrypted-vault.1', 'secret', { code: 42 });
    assert.deepEqual(await rec.next(1), { code: 42 });
  });

  e2e('sign-in through the app\'s user-auth, then sendToUser reaches the user', async () => {
    const ada = make({ Authorization: 'Bearer user-1' });
    const pusher = ada.connector.pusher;
    const rec = recorder();
    pusher.user.bind('hello', rec.fn);
    pusher.signin();
    await waitFor(() => pusher.user.user_data?.id === '1', { timeout: 10000, what: 'pusher-js signed in as user 1' });
    await waitFor(async () => {
      await pusherServer(herald.port).sendToUser('1', 'hello', { hi: true });
      return rec.count > 0;
    }, { timeout: 5000, interval: 200, what: 'sendToUser to arrive' });
  });

  e2e('no signature the app did not grant: ambiguous bodies, unlisted origins, other channels', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie: 'laravel_session=2' };
    // Bob may join chat.*, not orders.1: a second channel_name spelled the PHP way must not sneak through
    const sneaky = await post(herald.port, `/herald/auth/${APP_KEY}`, 'socket_id=1.2&channel_name=presence-chat.x&channel.name=private-orders.1', form);
    assert.equal(sneaky.status, 400);
    const public_ = await post(herald.port, `/herald/auth/${APP_KEY}`, 'socket_id=1.2&channel_name=orders', form);
    assert.equal(public_.status, 400);
    const evil = await post(herald.port, `/herald/auth/${APP_KEY}`, 'socket_id=1.2&channel_name=private-orders.2', { ...form, origin: 'http://evil.test' });
    assert.equal(evil.status, 403);
    const fine = await post(herald.port, `/herald/auth/${APP_KEY}`, 'socket_id=1.2&channel_name=private-orders.2', { ...form, origin: 'http://app.test' });
    assert.equal(fine.status, 200);
    assert.equal(fine.headers['access-control-allow-origin'], 'http://app.test');
    assert.equal(fine.headers['access-control-allow-credentials'], 'true');
    const unknownKey = await post(herald.port, '/herald/auth/nope', 'socket_id=1.2&channel_name=private-a', form);
    assert.equal(unknownKey.status, 404);
    // the browser's cookie is what Laravel's session reads; it is passed on like the other credentials
    const withCookie = await post(herald.port, `/herald/auth/${APP_KEY}`, 'socket_id=1.2&channel_name=private-orders.2', form);
    assert.equal(withCookie.status, 200);
    assert.ok(JSON.parse(withCookie.text).auth.startsWith(`${APP_KEY}:`));
    const noCookie = await post(herald.port, `/herald/auth/${APP_KEY}`, 'socket_id=1.2&channel_name=private-orders.2', { 'content-type': form['content-type'] });
    assert.equal(noCookie.status, 403);
    assert.equal((await httpGet(herald.port, '/readyz')).status, 200);
  });
});

describe('auth endpoint with no allowed_origins: same origin only', () => {
  let app;
  let herald;
  before(async () => {
    app = await startAuthApp();
    herald = await startHerald({ env: { HERALD_AUTH_URL: `${app.url}/broadcasting/auth` } });
  });
  after(async () => {
    await herald?.stop();
    await app?.stop();
  });

  e2e('another site gets 403 and no CORS headers; the same origin and non-browsers are served', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie: 'laravel_session=2' };
    const body = 'socket_id=1.2&channel_name=private-orders.2';
    for (const origin of ['http://evil.test', 'null']) {
      const res = await post(herald.port, `/herald/auth/${APP_KEY}`, body, { ...form, origin });
      assert.equal(res.status, 403, origin);
      assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
      assert.equal(res.headers['access-control-allow-credentials'], undefined, origin);
    }
    const preflight = await post(herald.port, `/herald/auth/${APP_KEY}`, '', {
      origin: 'http://evil.test', 'access-control-request-method': 'POST',
    }, 'OPTIONS');
    assert.equal(preflight.headers['access-control-allow-origin'], undefined, 'no preflight grant either');
    const same = await post(herald.port, `/herald/auth/${APP_KEY}`, body, { ...form, origin: `http://127.0.0.1:${herald.port}` });
    assert.equal(same.status, 200);
    // Behind the app's own proxy (nginx `location /herald/`), Host is the upstream's: the browser's
    // Sec-Fetch-Site, or the proxy's X-Forwarded-Host, says it is the page's own origin.
    const proxied = await post(herald.port, `/herald/auth/${APP_KEY}`, body, { ...form, origin: 'https://shop.test', 'sec-fetch-site': 'same-origin' });
    assert.equal(proxied.status, 200);
    const forwarded = await post(herald.port, `/herald/auth/${APP_KEY}`, body, { ...form, origin: 'https://shop.test', 'x-forwarded-host': 'shop.test' });
    assert.equal(forwarded.status, 200);
    const crossSite = await post(herald.port, `/herald/auth/${APP_KEY}`, body, { ...form, origin: 'https://evil.test', 'sec-fetch-site': 'cross-site' });
    assert.equal(crossSite.status, 403);
    const noOrigin = await post(herald.port, `/herald/auth/${APP_KEY}`, body, form);
    assert.equal(noOrigin.status, 200);
  });
});
