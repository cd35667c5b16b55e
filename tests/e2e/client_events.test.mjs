// Client events (whisper): relay rules, refusals (4009), rate limit (4301), disabled by config.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, modes, useServer, stopServer, autoCloseClients, rawClient, makeEcho, echoSubscribed, recorder,
  expectNothing, dataOf, errorCode, pusherServer, waitFor,
} from '../lib/harness.mjs';

for (const mode of modes()) {
  describe(`client events [${mode}]`, () => {
    const ctx = {};
    before(useServer(ctx, mode));
    after(stopServer(ctx));
    autoCloseClients();
    const api = () => pusherServer(ctx.port);

    e2e('Echo whisper on a private channel reaches listenForWhisper of the other client', async () => {
      const a = makeEcho({ port: ctx.port });
      const b = makeEcho({ port: ctx.port });
      const chA = a.private('doc.1');
      const gotB = recorder();
      const chB = b.private('doc.1').listenForWhisper('typing', gotB.fn);
      const gotA = recorder();
      chA.listenForWhisper('typing', gotA.fn);
      await echoSubscribed(chA);
      await echoSubscribed(chB);
      chA.whisper('typing', { name: 'A', n: 1 });
      assert.deepEqual(await gotB.next(1), { name: 'A', n: 1 });
      // marker: B whispers back; once A has it, A's own whisper would have been echoed already
      chB.whisper('typing', { name: 'B' });
      assert.deepEqual(await gotA.next(1), { name: 'B' });
      await expectNothing(200);
      assert.equal(gotA.count, 1, `sender got its own whisper: ${JSON.stringify(gotA.calls)}`);
      assert.equal(gotB.count, 1, `sender got its own whisper: ${JSON.stringify(gotB.calls)}`);
    });

    e2e('raw: relayed to other subscribers, never echoed, no user_id on private channels', async () => {
      const s = await rawClient(ctx.port);
      const r1 = await rawClient(ctx.port);
      const r2 = await rawClient(ctx.port);
      for (const c of [s, r1, r2]) await c.subscribePrivate('private-doc.2');
      s.send({ event: 'client-typing', channel: 'private-doc.2', data: { name: 'S' } });
      for (const r of [r1, r2]) {
        const f = await r.next('client-typing');
        assert.equal(f.channel, 'private-doc.2');
        assert.deepEqual(dataOf(f), { name: 'S' });
        assert.equal(f.user_id, undefined, 'user_id only on presence channels');
      }
      // marker for s: r1 sends one back
      r1.send({ event: 'client-ack', channel: 'private-doc.2', data: {} });
      await s.next('client-ack');
      await expectNothing(200);
      assert.deepEqual(s.all('client-typing'), [], 'sender must not get its own client event');
      assert.deepEqual(s.all('pusher:error'), []);
    });

    e2e('presence whisper carries user_id of the sender', async () => {
      const s = await rawClient(ctx.port);
      const r = await rawClient(ctx.port);
      await s.subscribePresence('presence-doc.3', 42, 'Ada');
      await r.subscribePresence('presence-doc.3', '7', 'Bob');
      s.send({ event: 'client-typing', channel: 'presence-doc.3', data: { t: 1 } });
      const f = await r.next('client-typing');
      assert.equal(f.user_id, '42');
      assert.deepEqual(dataOf(f), { t: 1 });

      // and through Echo
      const e = makeEcho({ port: ctx.port, userId: 9 });
      const got = recorder();
      const ch = e.join('doc.3').listenForWhisper('typing', got.fn);
      await echoSubscribed(ch);
      s.send({ event: 'client-typing', channel: 'presence-doc.3', data: { t: 2 } });
      assert.deepEqual(await got.next(1), { t: 2 });
      const frame = e.frames.find((x) => x.event === 'client-typing');
      assert.equal(frame.user_id, '42');
    });

    e2e('client event on a public channel -> pusher:error 4009, not delivered', async () => {
      const s = await rawClient(ctx.port);
      const r = await rawClient(ctx.port);
      await s.subscribeOk('lobby');
      await r.subscribeOk('lobby');
      s.send({ event: 'client-hello', channel: 'lobby', data: {} });
      const err = await s.next('pusher:error');
      assert.equal(errorCode(err), 4009, JSON.stringify(err));
      await api().trigger('lobby', 'marker', {});
      await r.next('marker');
      await expectNothing(200);
      assert.deepEqual(r.all('client-hello'), []);
      assert.ok(s.isOpen());
      await s.ping();
    });

    e2e('client event on a channel the sender is not subscribed to -> 4009, not delivered', async () => {
      const s = await rawClient(ctx.port);
      const r = await rawClient(ctx.port);
      await r.subscribePrivate('private-room.9');
      s.send({ event: 'client-hello', channel: 'private-room.9', data: {} });
      const err = await s.next('pusher:error');
      assert.equal(errorCode(err), 4009, JSON.stringify(err));
      await api().trigger('private-room.9', 'marker', {});
      await r.next('marker');
      await expectNothing(200);
      assert.deepEqual(r.all('client-hello'), []);
      assert.ok(s.isOpen());
    });

    e2e('client event rate limit: a burst of 30 -> 4301, excess dropped, connection stays open', async () => {
      const s = await rawClient(ctx.port);
      const r = await rawClient(ctx.port);
      await s.subscribePrivate('private-burst');
      await r.subscribePrivate('private-burst');
      for (let i = 0; i < 30; i++) {
        s.send({ event: 'client-burst', channel: 'private-burst', data: { i } });
      }
      const err = await s.next('pusher:error', 5000);
      assert.equal(errorCode(err), 4301, JSON.stringify(err));
      await s.ping(); // the whole burst has been processed
      await api().trigger('private-burst', 'marker', {});
      await r.next('marker');
      await expectNothing(300);
      const got = r.all('client-burst').map((f) => dataOf(f).i);
      assert.ok(got.length >= 1, 'at least the first events are relayed');
      assert.ok(got.length <= 20, `receiver got ${got.length} of 30 (limit 10/s)`);
      assert.deepEqual(got, [...got].sort((x, y) => x - y), 'in order');
      assert.ok(s.isOpen(), `sender closed with ${s.closeCode}`);
      await s.ping();
    });
  });

  describe(`client events disabled [${mode}] (HERALD_CLIENT_EVENTS=false)`, () => {
    const ctx = {};
    before(useServer(ctx, mode, { HERALD_CLIENT_EVENTS: 'false' }));
    after(stopServer(ctx));
    autoCloseClients();

    e2e('client events are refused with 4009 and not delivered', async () => {
      const s = await rawClient(ctx.port);
      const r = await rawClient(ctx.port);
      await s.subscribePrivate('private-x');
      await r.subscribePrivate('private-x');
      s.send({ event: 'client-typing', channel: 'private-x', data: {} });
      const err = await s.next('pusher:error');
      assert.equal(errorCode(err), 4009, JSON.stringify(err));
      await pusherServer(ctx.port).trigger('private-x', 'marker', {});
      await r.next('marker');
      await expectNothing(200);
      assert.deepEqual(r.all('client-typing'), []);
      await waitFor(() => s.isOpen(), { what: 'sender still open' });
    });
  });
}
