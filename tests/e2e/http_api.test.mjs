// HTTP API (POST /apps/{id}/events) through the official `pusher` Node SDK.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, modes, useServer, stopServer, autoCloseClients, rawClient, makeEcho, echoConnected,
  echoSubscribed, recorder, expectNothing, pusherServer, dataOf, twoEchoListeners,
} from '../lib/harness.mjs';

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the SDK call to reject');
}

for (const mode of modes()) {
  describe(`http api [${mode}]`, () => {
    const ctx = {};
    before(useServer(ctx, mode));
    after(stopServer(ctx));
    autoCloseClients();

    e2e('trigger reaches Echo listeners with the data object intact', async () => {
      const echo = makeEcho({ port: ctx.port });
      const rec = recorder();
      const ch = echo.channel('api-orders').listen('OrderShipped', rec.fn);
      await echoSubscribed(ch);
      const data = { order: { id: 3, total: 12.25, lines: [1, 2, 3] }, who: 'Zoë', nothing: null, yes: true };
      const res = await pusherServer(ctx.port).trigger('api-orders', 'App\\Events\\OrderShipped', data);
      assert.equal(res.status, 200);
      assert.deepEqual(await rec.next(1), data);
    });

    e2e('trigger to several channels (public, private, presence) delivers once on each', async () => {
      const echo = makeEcho({ port: ctx.port, userId: 3 });
      const recs = { pub: recorder(), priv: recorder(), pres: recorder() };
      const chans = [
        echo.channel('multi').listen('.ev', recs.pub.fn),
        echo.private('multi').listen('.ev', recs.priv.fn),
        echo.join('multi').listen('.ev', recs.pres.fn),
      ];
      for (const c of chans) await echoSubscribed(c);
      const api = pusherServer(ctx.port);
      await api.trigger(['multi', 'private-multi', 'presence-multi'], 'ev', { n: 1 });
      for (const r of Object.values(recs)) assert.deepEqual(await r.next(1), { n: 1 });
      await api.trigger(['multi', 'private-multi', 'presence-multi'], 'ev', { n: 2 }); // marker
      for (const r of Object.values(recs)) assert.deepEqual(await r.next(2), { n: 2 });
      await expectNothing(200);
      for (const [k, r] of Object.entries(recs)) assert.equal(r.count, 2, `${k}: ${JSON.stringify(r.calls)}`);
    });

    e2e('socket_id excludes that connection only', async () => {
      const { socketA, recA, recB } = await twoEchoListeners(ctx.port, (echo, fn) => echo.channel('excl').listen('.ev', fn));
      const api = pusherServer(ctx.port);
      await api.trigger('excl', 'ev', { n: 1 }, { socket_id: socketA });
      assert.deepEqual(await recB.next(1), { n: 1 });
      await api.trigger('excl', 'ev', { n: 2 }); // marker
      assert.deepEqual(await recA.next(1), { n: 2 });
      await expectNothing(200);
      assert.deepEqual(recA.calls, [{ n: 2 }]);
    });

    e2e('wrong secret -> 401, nothing delivered', async () => {
      const c = await rawClient(ctx.port);
      await c.subscribeOk('secure');
      const err = await rejection(pusherServer(ctx.port, { secret: 'wrong-secret' }).trigger('secure', 'bad', {}));
      assert.equal(err.status, 401, `${err.message} ${err.body ?? ''}`);
      await pusherServer(ctx.port).trigger('secure', 'marker', {});
      await c.next('marker');
      await expectNothing(200);
      assert.deepEqual(c.all('bad'), []);
    });

    e2e('wrong key -> 401', async () => {
      const err = await rejection(pusherServer(ctx.port, { key: 'other-key' }).trigger('secure', 'bad', {}));
      assert.ok([401, 404].includes(err.status), `${err.message} ${err.body ?? ''}`);
    });

    e2e('data over 10 KB -> 413; exactly under the limit is fine', async () => {
      const c = await rawClient(ctx.port);
      await c.subscribeOk('big');
      const api = pusherServer(ctx.port);
      const err = await rejection(api.trigger('big', 'huge', { blob: 'x'.repeat(11 * 1024) }));
      assert.equal(err.status, 413, `${err.message} ${err.body ?? ''}`);
      const blob = 'y'.repeat(9 * 1024);
      await api.trigger('big', 'fits', { blob });
      const f = await c.next('fits');
      assert.equal(dataOf(f).blob, blob);
      assert.deepEqual(c.all('huge'), []);
    });

    e2e('unknown app id -> 404', async () => {
      const err = await rejection(pusherServer(ctx.port, { appId: 'no-such-app' }).trigger('x', 'ev', {}));
      assert.equal(err.status, 404, `${err.message} ${err.body ?? ''}`);
    });
  });
}
