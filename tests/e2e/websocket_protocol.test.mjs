// RFC 6455 with hand-made frames (a raw TCP socket after a real upgrade): pongs echo the ping's payload, a
// broken protocol closes with 1002, a text message that is not UTF-8 with 1007. Other clients are unaffected.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import { e2e, startHerald, rawClient, pusherServer, dataOf, APP_KEY } from '../lib/harness.mjs';

/** A client frame: masked, as RFC 6455 requires from clients (payload < 126 bytes or 16-bit length). */
function frame(opcode, payload, { fin = true, rsv = 0, unmasked = false } = {}) {
  const data = Buffer.from(payload);
  const bit = unmasked ? 0 : 0x80;
  const head = data.length < 126 ? Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, bit | data.length])
    : Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, bit | 126, data.length >> 8, data.length & 0xff]);
  if (unmasked) return Buffer.concat([head, data]);
  const mask = crypto.randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, masked]);
}

/** A raw WebSocket: upgrades, then parses the server's (unmasked) frames. `early` goes out in the same write as
 * the handshake, before its answer. */
async function rawSocket(port, early = Buffer.alloc(0)) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.write(Buffer.concat([Buffer.from(`GET /app/${APP_KEY}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`
    + `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n`
    + 'Sec-WebSocket-Version: 13\r\n\r\n'), early]));
  let buf = Buffer.alloc(0);
  let upgraded = false;
  const frames = [];
  let received = 0;
  const waiters = [];
  const wake = () => { for (const w of waiters.splice(0)) w(); };
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(buf.subarray(0, end).toString(), /^HTTP\/1\.1 101/);
      buf = buf.subarray(end + 4);
      upgraded = true;
    }
    while (buf.length >= 2) {
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + len) break;
      frames.push({ opcode: buf[0] & 0x0f, payload: buf.subarray(off, off + len), seq: received++ });
      buf = buf.subarray(off + len);
    }
    wake();
  });
  socket.on('close', wake);
  const next = async (pred, what) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const i = frames.findIndex(pred);
      if (i >= 0) return frames.splice(i, 1)[0];
      if (Date.now() > deadline || socket.destroyed) throw new Error(`no ${what}; frames ${JSON.stringify(frames.map((f) => f.opcode))}`);
      await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
    }
  };
  await next((f) => f.opcode === 1 && f.payload.toString().includes('connection_established'), 'connection_established');
  return {
    send: (b) => socket.write(b),
    next,
    closeCode: async () => {
      const f = await next((x) => x.opcode === 8, 'close frame');
      return f.payload.readUInt16BE(0);
    },
    destroy: () => socket.destroy(),
  };
}

describe('WebSocket protocol (RFC 6455)', () => {
  let herald;
  let bystander;
  before(async () => {
    herald = await startHerald();
    bystander = await rawClient(herald.port);
    await bystander.subscribeOk('watch');
  });
  after(async () => { bystander?.ws.close(); await herald?.stop(); });

  async function bystanderServed(n) {
    await pusherServer(herald.port).trigger('watch', 'alive', { n });
    const f = await bystander.next((x) => x.event === 'alive' && dataOf(x).n === n);
    assert.equal(f.channel, 'watch');
  }

  e2e('a pong echoes the ping payload', async () => {
    const ws = await rawSocket(herald.port);
    ws.send(frame(0x9, 'hello-herald'));
    const pong = await ws.next((f) => f.opcode === 0xa, 'pong');
    assert.equal(pong.payload.toString(), 'hello-herald');
    ws.destroy();
  });

  // Read with the handshake, these bytes are in the server's hands before the connection is upgraded; they
  // must reach the session all the same, whole and in order.
  e2e('frames sent with the handshake, before its answer, are read in order', async () => {
    const early = Buffer.concat([
      frame(0x9, 'early-ping'),
      frame(0x1, JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'early-bird' } })),
    ]);
    const ws = await rawSocket(herald.port, early);
    const pong = await ws.next((f) => f.opcode === 0xa, 'pong');
    assert.equal(pong.payload.toString(), 'early-ping');
    const succeeded = await ws.next((f) => f.opcode === 1 && f.payload.toString().includes('subscription_succeeded'), 'subscription_succeeded');
    assert.ok(pong.seq < succeeded.seq, 'the ping, sent first, is answered first');
    await pusherServer(herald.port).trigger('early-bird', 'hello', { n: 1 });
    const event = await ws.next((f) => f.opcode === 1 && f.payload.toString().includes('"hello"'), 'the event');
    assert.equal(dataOf(JSON.parse(event.payload.toString())).n, 1);
    ws.destroy();
  });

  const violations = [
    ['a control frame over 125 bytes', () => [frame(0xa, 'x'.repeat(126))], 1002],
    ['a fragmented control frame', () => [frame(0x9, 'p', { fin: false })], 1002],
    ['reserved bits set', () => [frame(0x1, '{}', { rsv: 0x40 })], 1002],
    ['a continuation with no message to continue', () => [frame(0x0, 'x')], 1002],
    ['a new text frame inside an unfinished fragmented message', () => [frame(0x1, '{"event":', { fin: false }), frame(0x1, '{}')], 1002],
    ['invalid UTF-8 split over fragments', () => [frame(0x1, Buffer.from([0x7b, 0xe2, 0x82]), { fin: false }), frame(0x0, Buffer.from([0x28, 0x7d]))], 1007],
    ['invalid UTF-8 in one text frame', () => [frame(0x1, Buffer.from([0x7b, 0xff, 0x7d]))], 1007],
    ['a reserved opcode', () => [frame(0x3, 'x')], 1002],
    ['an unmasked text frame', () => [frame(0x1, '{"event":"pusher:ping","data":{}}', { unmasked: true })], 1002],
    ['an unmasked frame after masked ones', () => [frame(0x9, 'p'), frame(0x1, '{"event":"pusher:ping","data":{}}', { unmasked: true })], 1002],
  ];
  let n = 0;
  for (const [name, frames, code] of violations) {
    e2e(`${name} closes with ${code}; others are unaffected`, async () => {
      const ws = await rawSocket(herald.port);
      for (const f of frames()) ws.send(f);
      assert.equal(await ws.closeCode(), code);
      ws.destroy();
      await bystanderServed(++n);
    });
  }
});
