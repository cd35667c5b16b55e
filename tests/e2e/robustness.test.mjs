// Bad input, oversize frames, subscribe storms and a stalled (slow) consumer.
import { describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, modes, useServer, stopServer, closeClients, rawClient, pusherServer, httpGet, waitFor,
  errorCode, dataOf,
} from '../lib/harness.mjs';

const ENV = { HERALD_MAX_MESSAGE_SIZE: '10240', HERALD_MAX_OUTBOUND_QUEUE: '256' };

for (const mode of modes()) {
  describe(`robustness [${mode}]`, () => {
    const ctx = {};
    before(useServer(ctx, mode, ENV));
    after(stopServer(ctx));
    let bystander;
    let seq = 0;
    beforeEach(async () => {
      await closeClients();
      bystander = await rawClient(ctx.port);
      await bystander.subscribeOk('watch');
    });

    /** The node still works: a client connected all along gets a published event. */
    async function bystanderStillServed() {
      const n = ++seq;
      await pusherServer(ctx.port).trigger('watch', 'still-alive', { n });
      const f = await bystander.next((x) => x.event === 'still-alive' && dataOf(x).n === n, 5000);
      assert.equal(f.channel, 'watch');
      assert.equal((await httpGet(ctx.port, '/livez')).status, 200);
    }

    async function expectErrorThenUsable(c, payload, opts) {
      c.ws.send(payload, opts);
      const err = await c.next('pusher:error');
      const d = dataOf(err);
      assert.ok(d && typeof d === 'object', `pusher:error data should be an object/JSON: ${JSON.stringify(err)}`);
      assert.ok(Number.isInteger(Number(d.code)), `pusher:error without a code: ${JSON.stringify(err)}`);
      assert.ok(c.isOpen(), `closed with ${c.closeCode}`);
      await c.ping();
      return err;
    }

    e2e('not JSON -> pusher:error, connection stays usable', async () => {
      const c = await rawClient(ctx.port);
      await expectErrorThenUsable(c, 'this is {not json');
      await expectErrorThenUsable(c, '');
      await expectErrorThenUsable(c, '[1,2,3]');
      await bystanderStillServed();
    });

    e2e('JSON without event -> pusher:error, connection stays usable', async () => {
      const c = await rawClient(ctx.port);
      await expectErrorThenUsable(c, JSON.stringify({ data: { channel: 'x' } }));
      await expectErrorThenUsable(c, JSON.stringify({ event: 42, data: {} }));
      await bystanderStillServed();
    });

    e2e('unknown event name -> pusher:error, connection stays usable', async () => {
      const c = await rawClient(ctx.port);
      await expectErrorThenUsable(c, JSON.stringify({ event: 'pusher:does_not_exist', data: {} }));
      await expectErrorThenUsable(c, JSON.stringify({ event: 'hello', data: {} }));
      await bystanderStillServed();
    });

    e2e('binary frame -> pusher:error, connection stays usable', async () => {
      const c = await rawClient(ctx.port);
      await expectErrorThenUsable(c, Buffer.from([0, 1, 2, 3, 255]), { binary: true });
      await expectErrorThenUsable(c, Buffer.from(JSON.stringify({ event: 'pusher:ping', data: {} })), { binary: true });
      await bystanderStillServed();
    });

    e2e('a 20 KB text frame (limit 10240) closes the socket with a 4xxx code', async () => {
      const c = await rawClient(ctx.port);
      c.send({ event: 'client-big', channel: 'watch', data: { blob: 'z'.repeat(20 * 1024) } });
      const { code } = await c.waitClosed(5000);
      assert.ok(code >= 4000 && code <= 4999, `close code ${code}, frames ${c.dump()}`);
      await bystanderStillServed();
    });

    /** A pusher:ping frame of exactly `size` bytes. */
    function pingOfSize(size) {
      const empty = JSON.stringify({ event: 'pusher:ping', data: { pad: '' } });
      return JSON.stringify({ event: 'pusher:ping', data: { pad: 'p'.repeat(size - empty.length) } });
    }

    e2e('a message of exactly max_message_size (10240) is taken; one byte more closes with 4300', async () => {
      const c = await rawClient(ctx.port);
      const exact = pingOfSize(10240);
      assert.equal(Buffer.byteLength(exact), 10240);
      c.send(exact);
      await c.next((f) => f.event === 'pusher:pong', 5000);
      assert.ok(c.isOpen(), 'a message of the limit itself is allowed');
      c.send(pingOfSize(10241));
      const { code } = await c.waitClosed(5000);
      assert.equal(code, 4300);
    });

    e2e('subscribe storm (500 channels) -> refused beyond the limit, node stays up', async () => {
      const c = await rawClient(ctx.port);
      for (let i = 0; i < 500; i++) c.subscribe(`storm-${i}`, { auth: '' });
      await waitFor(() => c.frames.some((f) => f.event === 'pusher:subscription_error' || (f.event === 'pusher:error' && errorCode(f) === 4301))
        || c.closeCode !== undefined, { timeout: 10000, what: 'subscription_error or 4301 during the storm' });
      if (c.isOpen()) {
        await c.ping(10000).catch(() => {}); // the burst has been processed if it is still open
      }
      const ok = c.all('pusher_internal:subscription_succeeded');
      const refused = c.all('pusher:subscription_error');
      const limited = c.all((f) => f.event === 'pusher:error' && errorCode(f) === 4301);
      assert.ok(refused.length > 0 || limited.length > 0,
        `no subscription_error/4301 (${ok.length} succeeded; socket closed: ${c.closeCode ?? 'no'} ${c.closeReason ?? ''}): ${c.dump(600)}`);
      assert.ok(ok.length <= 100, `${ok.length} subscriptions succeeded (max 100 per connection)`);
      await bystanderStillServed();
      // the node accepts new connections and subscriptions
      const d = await rawClient(ctx.port);
      await d.subscribeOk('after-storm');
    });

    e2e('slow consumer: 100 readers get every event in order, the stalled one is closed', { timeout: 90000 }, async (t) => {
      const CH = 'firehose';
      const N = 2000;
      const PAD = 'p'.repeat(4000);
      const readers = [];
      // Light readers: after subscribing they store no frames, only the sequence number is checked.
      const state = [];
      for (let r = 0; r < 100; r++) {
        const st = { count: 0, last: -1, outOfOrder: 0 };
        state.push(st);
        const c = await rawClient(ctx.port, undefined, undefined, {
          onFrame: (raw) => {
            // {"event":"seq",...,"data":"{\"i\":N,\"pad\":...}"}: the sequence number is near the start
            const head = raw.toString('utf8', 0, 200);
            const m = /\\"i\\":(\d+),\\"pad\\"/.exec(head);
            if (!m) return;
            const i = Number(m[1]);
            if (i !== st.last + 1) st.outOfOrder++;
            st.last = i;
            st.count++;
          },
        });
        await c.subscribeOk(CH);
        c.store = false;
        c.frames.length = 0;
        readers.push(c);
      }

      const stalled = await rawClient(ctx.port);
      await stalled.subscribeOk(CH);
      stalled.ws._socket.pause();

      const api = pusherServer(ctx.port, { keepAlive: true });
      const t0 = Date.now();
      for (let i = 0; i < N; i++) {
        await api.trigger(CH, 'seq', { i, pad: PAD });
      }
      const publishMs = Date.now() - t0;
      await waitFor(() => state.every((s) => s.count === N), {
        timeout: 45000,
        what: `all readers to get ${N} events`,
      }).catch((e) => {
        const counts = state.map((s) => s.count);
        e.message += ` (min ${Math.min(...counts)}, max ${Math.max(...counts)}, publish took ${publishMs} ms)`;
        throw e;
      });
      for (const [r, s] of state.entries()) {
        assert.equal(s.outOfOrder, 0, `reader ${r} saw events out of order`);
        assert.equal(s.last, N - 1);
      }

      // Resume the stalled socket: it drains what the kernel buffered, then sees the close.
      stalled.ws._socket.resume();
      const { code } = await stalled.waitClosed(20000);
      assert.ok((code >= 4100 && code <= 4199) || code === 1006,
        `stalled client closed with ${code} (${stalled.closeReason}); expected 4100-4199 (or an abrupt close)`);
      const stalledSeq = stalled.all('seq').length;
      t.diagnostic(`published ${N} x ${PAD.length} B in ${publishMs} ms; stalled client got ${stalledSeq} before close ${code}`);
      assert.ok(stalledSeq < N, `stalled client received all ${N} events; it should have been cut off`);
      await bystanderStillServed();
    });
  });
}
