// Public / private / presence / encrypted channels, unsubscribe, auth errors, channel names.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, modes, useServer, stopServer, autoCloseClients, rawClient, makeEcho, echoConnected,
  echoSubscribed, recorder, waitFor, expectNothing, dataOf, pusherServer, signPrivate, signPresence,
  presenceData,
} from '../lib/harness.mjs';

for (const mode of modes()) {
  describe(`channels [${mode}]`, () => {
    const ctx = {};
    before(useServer(ctx, mode));
    after(stopServer(ctx));
    autoCloseClients();
    const api = () => pusherServer(ctx.port);

    e2e('public channel: subscription_succeeded frame and delivery to Echo', async () => {
      const raw = await rawClient(ctx.port);
      const ok = await raw.subscribeOk('orders');
      assert.deepEqual(ok, { event: 'pusher_internal:subscription_succeeded', channel: 'orders', data: '{}' });

      const echo = makeEcho({ port: ctx.port });
      const rec = recorder();
      const ch = echo.channel('orders').listen('OrderShipped', rec.fn);
      await echoSubscribed(ch);
      const payload = { order: { id: 1, total: 9.5, tags: ['a', 'b'], note: 'ü/"q"' } };
      await api().trigger('orders', 'App\\Events\\OrderShipped', payload);
      assert.deepEqual(await rec.next(1), payload);
      const f = await raw.next({ event: 'App\\Events\\OrderShipped' });
      assert.equal(f.channel, 'orders');
      assert.equal(typeof f.data, 'string', 'event data must be a JSON string on the wire');
      assert.deepEqual(JSON.parse(f.data), payload);
    });

    e2e('private channel: signed auth succeeds and events arrive', async () => {
      const echo = makeEcho({ port: ctx.port });
      const rec = recorder();
      const ch = echo.private('orders.1').listen('OrderShipped', rec.fn);
      await echoSubscribed(ch);
      await api().trigger('private-orders.1', 'App\\Events\\OrderShipped', { order: { id: 1 } });
      assert.deepEqual(await rec.next(1), { order: { id: 1 } });
    });

    e2e('private channel: wrong secret -> AuthError 401 and nothing delivered', async () => {
      const echo = makeEcho({ port: ctx.port, secret: 'wrong-secret' });
      const ch = echo.private('orders.2');
      const rec = recorder();
      ch.listen('OrderShipped', rec.fn);
      const err = await echoSubscribed(ch).then(() => null, (e) => e);
      assert.ok(err, 'subscription must fail');
      assert.equal(err.data.status, 401, JSON.stringify(err.data));
      assert.equal(err.data.type, 'AuthError', JSON.stringify(err.data));

      // Marker: a public channel on the same connection
      const marker = recorder();
      const pub = echo.channel('marker-2').listen('.marker', marker.fn);
      await echoSubscribed(pub);
      await api().trigger('private-orders.2', 'App\\Events\\OrderShipped', { secret: true });
      await api().trigger('marker-2', 'marker', { n: 1 });
      await marker.next(1);
      await expectNothing(300);
      assert.equal(rec.count, 0, `private event leaked: ${JSON.stringify(rec.calls)}`);
      assert.deepEqual(echo.frames.filter((f) => f.channel === 'private-orders.2' && !f.event.startsWith('pusher')), []);
    });

    e2e('private channel: raw frames for bad, missing and replayed auth', async () => {
      const c = await rawClient(ctx.port);
      const other = await rawClient(ctx.port);
      const cases = [
        ['private-a', { auth: signPrivate(c.socketId, 'private-a', { secret: 'nope' }) }],
        ['private-b', {}],
        ['private-c', { auth: '' }],
        ['private-d', { auth: signPrivate(other.socketId, 'private-d') }], // signed for another socket
        ['private-e', { auth: signPrivate(c.socketId, 'private-other') }], // signed for another channel
        ['private-f', { auth: `wrong-key:${signPrivate(c.socketId, 'private-f').split(':')[1]}` }],
        ['private-encrypted-g', { auth: signPrivate(c.socketId, 'private-encrypted-g', { secret: 'nope' }) }],
      ];
      for (const [channel, extra] of cases) {
        c.subscribe(channel, extra);
        const f = await c.next((x) => x.channel === channel);
        assert.equal(f.event, 'pusher:subscription_error', `${channel}: ${JSON.stringify(f)}`);
        const d = dataOf(f);
        assert.equal(d.type, 'AuthError', `${channel}: ${JSON.stringify(f)}`);
        assert.equal(d.status, 401, `${channel}: ${JSON.stringify(f)}`);
        assert.equal(typeof d.error, 'string');
      }
      // nothing published on those channels reaches c; marker on a public channel
      await c.subscribeOk('marker-raw');
      for (const [channel] of cases) await api().trigger(channel, 'leak', { channel });
      await api().trigger('marker-raw', 'marker', {});
      await c.next('marker');
      await expectNothing(300);
      assert.deepEqual(c.all('leak'), []);
      assert.ok(c.isOpen());
    });

    e2e('presence channel: here() lists members, ids are strings, numeric user_id normalised', async () => {
      const a = makeEcho({ port: ctx.port, userId: 42, userName: 'Ada' });
      const hereA = recorder();
      const chA = a.join('room.1').here(hereA.fn);
      await echoSubscribed(chA);
      assert.deepEqual(await hereA.next(1), [{ id: 42, name: 'Ada' }]);

      // raw client as user "7": subscription_succeeded data has ids/hash/count with string keys
      const raw = await rawClient(ctx.port);
      const ok = await raw.subscribePresence('presence-room.1', '7', 'Bob');
      assert.equal(typeof ok.data, 'string');
      const p = JSON.parse(ok.data).presence;
      assert.deepEqual([...p.ids].sort(), ['42', '7']);
      assert.equal(p.count, 2);
      assert.deepEqual(p.hash['42'], { id: 42, name: 'Ada' });
      assert.deepEqual(p.hash['7'], { id: '7', name: 'Bob' });

      // a third member sees both once
      const b = makeEcho({ port: ctx.port, userId: 9, userName: 'Cy' });
      const hereB = recorder();
      const chB = b.join('room.1').here(hereB.fn);
      await echoSubscribed(chB);
      const members = await hereB.next(1);
      const ids = members.map((m) => String(m.id)).sort();
      assert.deepEqual(ids, ['42', '7', '9']);

      // member_added for numeric 42 arrives with a string user_id
      const raw2 = await rawClient(ctx.port);
      await raw2.subscribePresence('presence-room.2', '1', 'x');
      const c = makeEcho({ port: ctx.port, userId: 42, userName: 'Ada' });
      await echoSubscribed(c.join('room.2'));
      const added = await raw2.next('pusher_internal:member_added');
      assert.equal(typeof added.data, 'string');
      assert.deepEqual(JSON.parse(added.data), { user_id: '42', user_info: { id: 42, name: 'Ada' } });
    });

    e2e('presence channel: bad signature or tampered channel_data -> 401', async () => {
      const c = await rawClient(ctx.port);
      const good = presenceData('5', 'Eve');
      const tampered = presenceData('6', 'Eve');
      c.subscribe('presence-p1', { auth: signPresence(c.socketId, 'presence-p1', good, { secret: 'bad' }), channel_data: good });
      c.subscribe('presence-p2', { auth: signPresence(c.socketId, 'presence-p2', good), channel_data: tampered });
      c.subscribe('presence-p3', { auth: signPrivate(c.socketId, 'presence-p3') }); // no channel_data
      for (const ch of ['presence-p1', 'presence-p2', 'presence-p3']) {
        const f = await c.next((x) => x.channel === ch);
        assert.equal(f.event, 'pusher:subscription_error', JSON.stringify(f));
        const d = dataOf(f);
        if (ch === 'presence-p3') {
          // missing channel_data: a malformed request (400) or a failed auth (401) are both fine
          assert.ok([400, 401].includes(d.status), JSON.stringify(f));
        } else {
          assert.equal(d.status, 401, JSON.stringify(f));
          assert.equal(d.type, 'AuthError', JSON.stringify(f));
        }
      }
      // nobody was added: a member subscribing now sees only itself
      const d = await rawClient(ctx.port);
      for (const ch of ['presence-p1', 'presence-p2']) {
        const ok = await d.subscribePresence(ch, '8', 'Fay');
        assert.deepEqual(JSON.parse(ok.data).presence.ids, ['8']);
      }
    });

    e2e('encrypted channel: payload relayed unchanged and decrypted by pusher-js', async () => {
      const echo = makeEcho({ port: ctx.port });
      const rec = recorder();
      const ch = echo.encryptedPrivate('secret.1').listen('Secret', rec.fn);
      await echoSubscribed(ch);
      const raw = await rawClient(ctx.port);
      await raw.subscribePrivate('private-encrypted-secret.1');
      await api().trigger('private-encrypted-secret.1', 'App\\Events\\Secret', { msg: 'top secret' });
      assert.deepEqual(await rec.next(1), { msg: 'top secret' });
      const f = await raw.next({ event: 'App\\Events\\Secret' });
      const d = dataOf(f);
      assert.equal(typeof d.nonce, 'string');
      assert.equal(typeof d.ciphertext, 'string');
      assert.ok(!JSON.stringify(f).includes('top secret'));
    });

    e2e('unsubscribe stops delivery (raw and Echo leave())', async () => {
      const c = await rawClient(ctx.port);
      await c.subscribeOk('news');
      await c.subscribeOk('marker-u');
      await api().trigger('news', 'before', { n: 1 });
      await c.next('before');
      c.send({ event: 'pusher:unsubscribe', data: { channel: 'news' } });
      await c.ping(); // the unsubscribe has been processed
      await api().trigger('news', 'after', { n: 2 });
      await api().trigger('marker-u', 'marker', {});
      await c.next('marker');

      const echo = makeEcho({ port: ctx.port });
      const rec = recorder();
      const ch = echo.channel('news').listen('.after', rec.fn);
      await echoSubscribed(ch);
      const marker = recorder();
      const m = echo.channel('marker-e').listen('.marker', marker.fn);
      await echoSubscribed(m);
      echo.leave('news');
      // Echo's unsubscribe is a frame on the same socket; a ping-equivalent marker: subscribe again elsewhere
      const m2 = echo.channel('marker-e2');
      await echoSubscribed(m2);
      await api().trigger('news', 'after', { n: 3 });
      await api().trigger('marker-e', 'marker', {});
      await marker.next(1);
      await expectNothing(300);
      assert.deepEqual(c.all('after'), [], 'raw client got an event after unsubscribing');
      assert.equal(rec.count, 0, 'Echo got an event after leave()');
      assert.deepEqual(echo.frames.filter((f) => f.event === 'after'), [], 'server sent an event after leave()');
    });

    e2e('invalid channel names -> subscription_error 400; 200 chars is fine', async () => {
      const c = await rawClient(ctx.port);
      const longPrivate = 'private-' + 'y'.repeat(193);
      const bad = [
        ['bad name', {}], ['bad#name', {}], ['ünïcode', {}], ['a/b', {}], ['x'.repeat(201), {}],
        // correctly signed, so only the name is wrong
        [longPrivate, { auth: signPrivate(c.socketId, longPrivate) }],
        ['private-bad name', { auth: signPrivate(c.socketId, 'private-bad name') }],
      ];
      for (const [name, extra] of bad) {
        c.subscribe(name, extra);
        const f = await c.next((x) => x.event === 'pusher:subscription_error' || x.event === 'pusher_internal:subscription_succeeded' || x.event === 'pusher:error');
        assert.equal(f.event, 'pusher:subscription_error', `${name.slice(0, 30)}: ${JSON.stringify(f).slice(0, 300)}`);
        assert.equal(dataOf(f).status, 400, `${name.slice(0, 30)}: ${JSON.stringify(f).slice(0, 300)}`);
      }
      const ok = 'A-z_0=9@,.;' + 'x'.repeat(189);
      assert.equal(ok.length, 200);
      await c.subscribeOk(ok);
      assert.ok(c.isOpen());
      await c.ping();
    });
  });

  describe(`presence multi-tab [${mode}]`, () => {
    const ctx = {};
    before(useServer(ctx, mode));
    after(stopServer(ctx));
    autoCloseClients();

    e2e('two tabs of one user: one joining, one leaving, here() lists each user once', async () => {
      const CH = 'chat.1';
      const PCH = 'presence-chat.1';
      const observer = makeEcho({ port: ctx.port, userId: 1, userName: 'Obs' });
      const joining = recorder();
      const leaving = recorder();
      const obsCh = observer.join(CH).joining(joining.fn).leaving(leaving.fn);
      await echoSubscribed(obsCh);
      const obsFrames = (event, uid) => observer.frames.filter((f) => f.event === event && f.channel === PCH
        && String((typeof f.data === 'string' ? JSON.parse(f.data) : f.data).user_id) === uid);

      // tab 1 of user 7 joins: exactly one member_added
      const tab1 = makeEcho({ port: ctx.port, userId: 7, userName: 'Tab' });
      await echoSubscribed(tab1.join(CH));
      assert.deepEqual(await joining.next(1), { id: 7, name: 'Tab' });

      // tab 2 of the same user: here() shows 1 and 7 once each
      const tab2 = makeEcho({ port: ctx.port, userId: 7, userName: 'Tab' });
      const here2 = recorder();
      await echoSubscribed(tab2.join(CH).here(here2.fn));
      const members = (await here2.next(1)).map((m) => String(m.id)).sort();
      assert.deepEqual(members, ['1', '7']);
      assert.equal(tab2.connector.pusher.channel(PCH).members.count, 2);

      // marker: user 9 joins; by then a second member_added for 7 would have arrived
      const nine = makeEcho({ port: ctx.port, userId: 9, userName: 'Nine' });
      await echoSubscribed(nine.join(CH));
      assert.deepEqual(await joining.next(2), { id: 9, name: 'Nine' });
      assert.equal(obsFrames('pusher_internal:member_added', '7').length, 1, 'second tab must not re-announce user 7');

      // close tab 1: no member_removed (user 7 still has tab 2)
      tab1.disconnect();
      await waitFor(() => tab1.connector.pusher.connection.state === 'disconnected', { what: 'tab1 closed' });
      // marker: user 9 leaves; its member_removed must be the only one
      nine.disconnect();
      assert.deepEqual(await leaving.next(1), { id: 9, name: 'Nine' });
      await expectNothing(300);
      assert.equal(obsFrames('pusher_internal:member_removed', '7').length, 0, 'closing one of two tabs removed the member');

      // close the last tab: exactly one member_removed for 7
      tab2.disconnect();
      assert.deepEqual(await leaving.next(2), { id: 7, name: 'Tab' });
      // marker: user 10 joins and leaves
      const ten = makeEcho({ port: ctx.port, userId: 10 });
      await echoSubscribed(ten.join(CH));
      await joining.next(3);
      ten.disconnect();
      await leaving.next(3);
      assert.equal(obsFrames('pusher_internal:member_removed', '7').length, 1, 'exactly one member_removed for 7');
      assert.equal(obsFrames('pusher_internal:member_added', '7').length, 1);
      assert.equal(obsCh.subscription.members.count, 1);
    });
  });
}
