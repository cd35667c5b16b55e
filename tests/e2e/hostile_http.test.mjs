// Hostile HTTP callers: nothing is read or held for a request that cannot be authenticated, and request bodies
// are bounded in size, time and concurrency. Raw TCP sockets, so the test controls every byte.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import crypto from 'node:crypto';
import { e2e, startHerald, waitFor, pusherServer, hmacHex, APP_ID, APP_KEY, APP_SECRET } from '../lib/harness.mjs';

/** Sends a request head (and `body`, maybe partial) on a raw socket; resolves with the status once one arrives. */
function rawRequest(port, { path, contentLength, body = '' }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n${body}`);
    });
    let head = '';
    socket.on('data', (d) => {
      head += d;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) resolve({ status: Number(m[1]), socket });
    });
    socket.on('error', reject);
  });
}

function openStalled(port, path, n) {
  const sockets = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY.slice(0, 8)}`);
    });
    s.on('error', () => {});
    sockets.push(s);
  }
  return sockets;
}

const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const now = () => Math.floor(Date.now() / 1000);
const fresh = () => `auth_key=${APP_KEY}&auth_timestamp=${now()}&auth_version=1.0&auth_signature=${'0'.repeat(64)}`;
/** A correctly signed events path for `body`, as the Pusher SDK builds it (the signature covers body_md5). */
function signed(body) {
  const md5 = crypto.createHash('md5').update(body).digest('hex');
  const query = `auth_key=${APP_KEY}&auth_timestamp=${now()}&auth_version=1.0&body_md5=${md5}`;
  const path = `/apps/${APP_ID}/events`;
  return `${path}?${query}&auth_signature=${hmacHex(APP_SECRET, `POST\n${path}\n${query}`)}`;
}
const BODY = JSON.stringify({ name: 'slow', channel: 'news', data: '{}' });

describe('hostile HTTP callers', () => {
  let herald;
  before(async () => { herald = await startHerald({ env: { HERALD_BODY_TIMEOUT_MS: '1000' } }); });
  after(async () => { await herald?.stop(); });

  e2e('a request that cannot be authenticated is refused before its body is read', async () => {
    const started = Date.now();
    const badKey = await rawRequest(herald.port, { path: `/apps/${APP_ID}/events?auth_key=nope&auth_timestamp=${now()}&auth_signature=x`, contentLength: 200000 });
    assert.equal(badKey.status, 401);
    const stale = await rawRequest(herald.port, { path: `/apps/${APP_ID}/events?auth_key=${APP_KEY}&auth_timestamp=1&auth_signature=x`, contentLength: 200000 });
    assert.equal(stale.status, 401);
    const unknownApp = await rawRequest(herald.port, { path: `/apps/nope/events?${fresh()}`, contentLength: 200000 });
    assert.equal(unknownApp.status, 404);
    // the app's key is public (it is in every page): a forged signature is refused before the body too
    const forged = await rawRequest(herald.port, { path: `/apps/${APP_ID}/events?${fresh()}`, contentLength: 200000 });
    assert.equal(forged.status, 401);
    assert.ok(Date.now() - started < 1000, 'answered without waiting for the declared bodies');
    for (const r of [badKey, stale, unknownApp, forged]) r.socket.destroy();
  });

  e2e('a declared body over the limit is refused at once (413); a slow one is cut after the body timeout (408)', async () => {
    const big = await rawRequest(herald.port, { path: signed(BODY), contentLength: 300 * 1024 });
    assert.equal(big.status, 413);
    big.socket.destroy();
    const started = Date.now();
    const slow = await rawRequest(herald.port, { path: signed(BODY), contentLength: Buffer.byteLength(BODY), body: BODY.slice(0, 8) });
    assert.equal(slow.status, 408);
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 5000, `cut after ${took} ms`);
    slow.socket.destroy();
  });

  e2e('300 stalled bodies of a signed caller: at most 64 are read at once, the rest get 503, every socket is let go', async () => {
    const before = fdCount(herald.pid);
    const sockets = openStalled(herald.port, signed(BODY), 300);
    const statuses = [];
    for (const s of sockets) s.on('data', (d) => { const m = /^HTTP\/1\.1 (\d{3})/.exec(String(d)); if (m) statuses.push(Number(m[1])); });
    await waitFor(() => statuses.filter((s) => s === 503).length >= 236, { timeout: 10000, what: '503 for the bodies over the limit' });
    await waitFor(() => statuses.length === 300, { timeout: 10000, what: 'an answer to every request (408 after the timeout)' });
    assert.equal(statuses.filter((s) => s === 408).length, 64);
    for (const s of sockets) s.destroy();
    await waitFor(() => fdCount(herald.pid) <= before + 5, { timeout: 10000, what: 'the node to let every socket go' });
    // and the API still works for a real caller
    await pusherServer(herald.port).trigger('news', 'still-fine', {});
  });
});
