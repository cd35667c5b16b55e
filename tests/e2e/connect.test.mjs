// Handshake, refusals (unknown key, protocol), ping/pong, server keepalive, health endpoints.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, modes, useServer, stopServer, autoCloseClients, rawClient, makeEcho, echoConnected, echoState,
  echoSubscribed, recorder, countingProxy, waitFor, dataOf, errorCode, httpGet, pusherServer,
  SOCKET_ID_RE, APP_KEY,
} from '../lib/harness.mjs';

for (const mode of modes()) {
  describe(`connect [${mode}]`, () => {
    const ctx = {};
    before(useServer(ctx, mode));
    after(stopServer(ctx));
    autoCloseClients();

    e2e('first frame is pusher:connection_established with a string data payload', async () => {
      const c = await rawClient(ctx.port);
      const first = c.frames[0];
      assert.equal(first.event, 'pusher:connection_established');
      assert.equal(typeof first.data, 'string', 'data must be a JSON string');
      const d = JSON.parse(first.data);
      assert.match(d.socket_id, SOCKET_ID_RE);
      assert.equal(typeof d.activity_timeout, 'number');
      assert.ok(d.activity_timeout > 0);
    });

    e2e('socket ids are unique per connection', async () => {
      const clients = await Promise.all(Array.from({ length: 10 }, () => rawClient(ctx.port)));
      const ids = clients.map((c) => c.socketId);
      for (const id of ids) assert.match(id, SOCKET_ID_RE);
      assert.equal(new Set(ids).size, ids.length, `duplicate socket ids: ${ids}`);
    });

    e2e('protocol 5 and 6 are accepted', async () => {
      for (const v of [5, 6]) {
        const c = await rawClient(ctx.port, APP_KEY, `protocol=${v}&client=js&version=8.6.0`);
        assert.match(c.socketId, SOCKET_ID_RE);
      }
    });

    e2e('pusher-js (laravel-echo reverb) connects and gets a socket id', async () => {
      const echo = makeEcho({ port: ctx.port });
      const id = await echoConnected(echo);
      assert.match(id, SOCKET_ID_RE);
    });

    e2e('unknown app key: pusher:error 4001 then close 4001', async () => {
      const c = await rawClient(ctx.port, 'no-such-key', undefined, { established: false });
      const { code } = await c.waitClosed(5000);
      const err = c.frames.find((f) => f.event === 'pusher:error');
      assert.ok(err, `expected a pusher:error frame, got ${c.dump()} (HTTP status ${c.unexpectedResponse ?? '-'})`);
      assert.equal(errorCode(err), 4001, `pusher:error data: ${JSON.stringify(err.data)}`);
      assert.equal(code, 4001);
      assert.ok(!c.frames.some((f) => f.event === 'pusher:connection_established'));
    });

    e2e('unknown app key: pusher-js gives up without a reconnect loop', async () => {
      const proxy = await countingProxy(ctx.port);
      const echo = makeEcho({ port: proxy.port, key: 'no-such-key' });
      const errors = [];
      echo.connector.pusher.connection.bind('error', (e) => errors.push(e));
      await waitFor(() => proxy.connections >= 1, { timeout: 5000, what: 'first connection attempt' });
      await waitFor(() => ['disconnected', 'failed'].includes(echoState(echo)),
        { timeout: 5000, what: `pusher-js to give up (states: ${echo.states})` });
      // Watch for ~1.5 s more: a refused client must not come back.
      const t0 = Date.now();
      await waitFor(() => Date.now() - t0 >= 1500 || proxy.connections > 2, { timeout: 3000, what: 'observation window' });
      assert.ok(proxy.connections <= 2, `pusher-js reconnected ${proxy.connections} times (states: ${echo.states})`);
      assert.ok(['disconnected', 'failed'].includes(echoState(echo)), `final state ${echoState(echo)}`);
      assert.ok(!echo.states.includes('connected'), `states: ${echo.states}`);
    });

    e2e('unsupported protocol (99) closes with 4007', async () => {
      const c = await rawClient(ctx.port, APP_KEY, 'protocol=99&client=js&version=8.6.0', { established: false });
      const { code } = await c.waitClosed(5000);
      assert.equal(code, 4007, `frames: ${c.dump()} (HTTP status ${c.unexpectedResponse ?? '-'})`);
      assert.ok(!c.frames.some((f) => f.event === 'pusher:connection_established'));
    });

    e2e('missing protocol parameter closes with 4008', async () => {
      const c = await rawClient(ctx.port, APP_KEY, 'client=js&version=8.6.0', { established: false });
      const { code } = await c.waitClosed(5000);
      assert.equal(code, 4008, `frames: ${c.dump()} (HTTP status ${c.unexpectedResponse ?? '-'})`);
      assert.ok(!c.frames.some((f) => f.event === 'pusher:connection_established'));
    });

    e2e('pusher:ping is answered with pusher:pong', async () => {
      const c = await rawClient(ctx.port);
      c.send({ event: 'pusher:ping', data: {} });
      const pong = await c.next('pusher:pong');
      assert.equal(pong.data, '{}');
      // a string-data ping (as some SDKs send it) too
      c.send({ event: 'pusher:ping', data: '{}' });
      await c.next('pusher:pong');
      assert.ok(c.isOpen());
    });

    e2e('health: /livez and /readyz are 200', async () => {
      assert.equal((await httpGet(ctx.port, '/livez')).status, 200);
      assert.equal((await httpGet(ctx.port, '/readyz')).status, 200);
    });
  });

  describe(`keepalive [${mode}] (HERALD_ACTIVITY_TIMEOUT_SECS=1, HERALD_PONG_TIMEOUT_SECS=2)`, () => {
    const ctx = {};
    // A 2 s pong window: a loaded 2-core CI machine can stall the test process for over a second.
    before(useServer(ctx, mode, { HERALD_ACTIVITY_TIMEOUT_SECS: '1', HERALD_PONG_TIMEOUT_SECS: '2' }));
    after(stopServer(ctx));
    autoCloseClients();

    e2e('activity_timeout is advertised as 1', async () => {
      const c = await rawClient(ctx.port);
      assert.equal(c.activityTimeout, 1);
    });

    e2e('a silent client is pinged and stays connected while it answers', async () => {
      const c = await rawClient(ctx.port);
      const t0 = Date.now();
      for (let i = 0; i < 3; i++) {
        const ping = await c.next('pusher:ping', 4000);
        assert.equal(ping.event, 'pusher:ping');
        c.send({ event: 'pusher:pong', data: {} });
      }
      assert.ok(Date.now() - t0 >= 1500, 'three ping cycles should take a few seconds');
      assert.ok(c.isOpen(), `closed with ${c.closeCode}`);
      assert.ok(!c.frames.some((f) => f.event === 'pusher:error'), `frames: ${c.dump()}`);
      await c.ping();
    });

    e2e('a client that does not answer pings gets 4201 and is closed with 4201', async () => {
      const c = await rawClient(ctx.port);
      await c.next('pusher:ping', 4000);
      const { code } = await c.waitClosed(8000);
      const err = c.frames.find((f) => f.event === 'pusher:error');
      assert.ok(err, `expected pusher:error before close, frames: ${c.dump()}`);
      assert.equal(errorCode(err), 4201, `pusher:error data: ${JSON.stringify(err.data)}`);
      assert.equal(code, 4201);
    });

    e2e('pusher-js answers server pings and stays connected', async () => {
      const echo = makeEcho({ port: ctx.port });
      const socketId = await echoConnected(echo);
      const rec = recorder();
      const ch = echo.channel('keepalive');
      ch.listen('.tick', rec.fn);
      await echoSubscribed(ch);
      const statesBefore = echo.states.length;
      const heartbeats = () => echo.frames.filter((f) => f.event === 'pusher:ping' || f.event === 'pusher:pong').length;
      const hb0 = heartbeats();
      // Four heartbeat frames at a 1 s activity timeout = several seconds of idleness.
      await waitFor(() => heartbeats() >= hb0 + 4, { timeout: 12000, what: 'four heartbeat frames' });
      assert.equal(echoState(echo), 'connected');
      assert.deepEqual(echo.states.slice(statesBefore), [], 'no state changes while idle');
      assert.equal(echo.socketId(), socketId, 'same connection');
      await pusherServer(ctx.port).trigger('keepalive', 'tick', { ok: true });
      assert.deepEqual(await rec.next(1), { ok: true });
    });
  });
}
