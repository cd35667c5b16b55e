// Test harness for Herald's end-to-end suite: owns every process and client a test starts.
import { spawn, execFile } from 'node:child_process';
import { createHmac, createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it, afterEach } from 'node:test';

import WebSocket from 'ws';
import Pusher from 'pusher-js';
import Echo from 'laravel-echo';
import PusherServer from 'pusher';
import { linkProxy } from './link_proxy.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HERALD_BIN = process.env.HERALD_BIN || path.join(REPO_ROOT, 'target', 'debug', 'herald');

export const APP_ID = 'app-id';
export const APP_KEY = 'app-key';
export const APP_SECRET = 'app-secret';
export const SOCKET_ID_RE = /^\d+\.\d+$/;

// ---------------------------------------------------------------------------------------------
// Process registry: everything we spawn is killed in after hooks and, as a last resort, on exit.
// ---------------------------------------------------------------------------------------------
const children = new Set();
const heralds = new Set();

function killAllSync() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killAllSync(); process.exit(130); });
}

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Spawns a process that is killed when the test run ends, whatever happens. */
export function spawnTracked(command, args, options) {
  return track(spawn(command, args, options));
}

/** Stops a tracked process: SIGTERM, then SIGKILL after the grace. */
export { stopChild };

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child, { graceMs = 5000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
  await exited(child);
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Bounded wait. `what` may be a promise (raced against the timeout) or a function polled until
 * it returns a truthy value (it may be async); resolves with that value.
 */
export async function waitFor(what, { timeout = 5000, what: label = 'condition', interval = 20 } = {}) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for ${label}`)), timeout);
  });
  try {
    if (typeof what !== 'function') {
      return await Promise.race([Promise.resolve(what), expired]);
    }
    let done = false;
    expired.catch(() => { done = true; });
    const poll = (async () => {
      for (;;) {
        if (done) return undefined;
        const v = await what();
        if (v) return v;
        await sleep(interval);
      }
    })();
    return await Promise.race([poll, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Only for asserting that something is NOT delivered: wait a little after a later marker has
 * arrived. Never use it to wait for something to happen.
 */
export function expectNothing(ms = 300) {
  return sleep(ms);
}

// ---------------------------------------------------------------------------------------------
// Ports, Redis, Herald
// ---------------------------------------------------------------------------------------------
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function redisPing(port) {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping'], { timeout: 2000 }, (err, stdout) => {
      resolve(!err && stdout.trim() === 'PONG');
    });
  });
}

export async function startRedis() {
  let port;
  do { port = await freePort(); } while (port === 6379);
  let child = null;
  let logs = '';

  async function start() {
    logs = '';
    child = track(spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    ], { stdio: ['ignore', 'pipe', 'pipe'] }));
    child.stdout.on('data', (d) => { logs += d; });
    child.stderr.on('data', (d) => { logs += d; });
    const me = child;
    await waitFor(async () => {
      if (me.exitCode !== null) throw new Error(`redis-server exited early:\n${logs}`);
      return redisPing(port);
    }, { timeout: 10000, what: `redis-server on port ${port} to answer PONG` });
  }

  async function stop() {
    if (child) await stopChild(child);
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() { await stop(); await start(); },
    logs: () => logs,
    get pid() { return child?.pid; },
  };
}

export async function httpGet(port, urlPath, { timeout = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

export async function readyzStatus(port) {
  try {
    return (await httpGet(port, '/readyz', { timeout: 1000 })).status;
  } catch {
    return 0;
  }
}

/**
 * Spawn Herald. `redisUrl` absent = embedded (in-memory) mode. Waits until /readyz is 200
 * unless `waitReady` is false.
 */
/** Laravel's environment names that Herald falls back to (see crates/herald-server/src/laravel_env.rs). */
export const LARAVEL_FALLBACKS = [
  'REVERB_SERVER_HOST', 'REVERB_SERVER_PORT', 'REDIS_URL', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_USERNAME',
  'REDIS_PASSWORD', 'REDIS_DB', 'REDIS_SCHEME', 'REDIS_PREFIX', 'APP_NAME', 'PUSHER_APP_ID', 'PUSHER_APP_KEY',
  'PUSHER_APP_SECRET', 'REVERB_APP_ID', 'REVERB_APP_KEY', 'REVERB_APP_SECRET',
];

export async function startHerald({ redisUrl, env = {}, waitReady = true, readyTimeout = 20000 } = {}) {
  const port = await freePort();
  const fullEnv = {
    ...process.env,
    HERALD_HOST: '127.0.0.1',
    HERALD_PORT: String(port),
    HERALD_APP_ID: APP_ID,
    HERALD_APP_KEY: APP_KEY,
    HERALD_APP_SECRET: APP_SECRET,
    RUST_LOG: 'info',
    HERALD_DRAIN_SECS: '1',
    HERALD_PRESENCE_GRACE_MS: '500',
    ...env,
  };
  delete fullEnv.HERALD_REDIS_URL;
  if (redisUrl) fullEnv.HERALD_REDIS_URL = redisUrl;
  // Laravel's own names are fallbacks Herald reads: a test sets them itself or not at all.
  for (const name of LARAVEL_FALLBACKS) if (!(name in env)) delete fullEnv[name];

  let logs = '';
  const child = track(spawn(HERALD_BIN, [], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.on('error', (e) => { logs += `\n[spawn error] ${e.message}\n`; });
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  child.on('exit', (code, sig) => { logs += `\n[herald exited code=${code} signal=${sig}]\n`; });

  const herald = {
    port,
    host: '127.0.0.1',
    env: fullEnv,
    pid: child.pid,
    logs: () => logs,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() { heralds.delete(herald); await stopChild(child); },
    async kill9() { heralds.delete(herald); child.kill('SIGKILL'); await exited(child); },
    url: (p = '') => `http://127.0.0.1:${port}${p}`,
  };
  heralds.add(herald);

  if (waitReady) {
    try {
      await waitFor(async () => {
        if (!herald.alive()) throw new Error('herald exited before becoming ready');
        return (await readyzStatus(port)) === 200;
      }, { timeout: readyTimeout, what: `herald /readyz on port ${port}` });
    } catch (e) {
      await herald.kill9();
      e.message += `\n--- herald output ---\n${logs.slice(-6000)}`;
      throw e;
    }
  }
  return herald;
}

/** Output of every Herald still running, for failure reports. */
export function heraldLogs(maxChars = 6000) {
  let out = '';
  for (const h of heralds) {
    // eslint-disable-next-line no-control-regex
    const text = h.logs().replace(/\x1b\[[0-9;]*m/g, '');
    out += `\n--- herald :${h.port} output (last ${maxChars} chars) ---\n${text.slice(-maxChars)}`;
  }
  return out;
}

/** The first fenced block of docs/<page> whose text matches `pattern` (which captures the block's body). */
export function docsBlock(page, pattern) {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'docs', page), 'utf8');
  const match = pattern.exec(text);
  if (!match) throw new Error(`docs/${page} has no block matching ${pattern}`);
  return match[1];
}

// ---------------------------------------------------------------------------------------------
// Test wrappers and modes
// ---------------------------------------------------------------------------------------------
/** Modes for tests that do not need Redis: HERALD_TEST_MODE=embedded|redis, default both. */
export function modes() {
  const m = process.env.HERALD_TEST_MODE;
  if (m === 'embedded' || m === 'redis') return [m];
  return ['embedded', 'redis'];
}

/** A bounded test whose failure message carries the running Herald's output. */
export function e2e(name, fn, options = {}) {
  if (typeof fn === 'object' && typeof options === 'function') [fn, options] = [options, fn];
  const { timeout = 30000, ...opts } = options;
  return it(name, { timeout, ...opts }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      const extra = heraldLogs();
      if (err && typeof err === 'object') {
        try { err.message = `${err.message}${extra}`; } catch { /* read-only message */ }
      }
      throw err;
    }
  });
}

/** Start (redis +) herald for a describe block; returns a lazily-filled context object. */
export function useServer(ctx, mode, env = {}) {
  return async () => {
    if (mode === 'redis') {
      ctx.redis = await startRedis();
    }
    ctx.herald = await startHerald({ redisUrl: ctx.redis?.url, env });
    ctx.port = ctx.herald.port;
  };
}

export function stopServer(ctx) {
  return async () => {
    await closeClients();
    if (ctx.herald) await ctx.herald.stop();
    if (ctx.redis) await ctx.redis.stop();
  };
}

// ---------------------------------------------------------------------------------------------
// Client registry: every client a test opens is closed after the test.
// ---------------------------------------------------------------------------------------------
const openClients = new Set();

export async function closeClients() {
  const list = [...openClients];
  openClients.clear();
  await Promise.all(list.map(async (c) => {
    try { await c(); } catch { /* ignore */ }
  }));
}

/** Register closeClients() as afterEach of the current describe. */
export function autoCloseClients() {
  afterEach(closeClients);
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------
export function hmacHex(secret, str) {
  return createHmac('sha256', secret).update(str).digest('hex');
}

export function signPrivate(socketId, channel, { key = APP_KEY, secret = APP_SECRET } = {}) {
  return `${key}:${hmacHex(secret, `${socketId}:${channel}`)}`;
}

export function signPresence(socketId, channel, channelData, { key = APP_KEY, secret = APP_SECRET } = {}) {
  return `${key}:${hmacHex(secret, `${socketId}:${channel}:${channelData}`)}`;
}

export function presenceData(userId, name) {
  return JSON.stringify({ user_id: userId, user_info: { id: userId, name: name ?? `user${userId}` } });
}

export const MASTER_KEY_B64 = Buffer.alloc(32, 7).toString('base64');

export function sharedSecret(channel, masterKeyB64 = MASTER_KEY_B64) {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(channel), Buffer.from(masterKeyB64, 'base64')]))
    .digest('base64');
}

// ---------------------------------------------------------------------------------------------
// laravel-echo + pusher-js
// ---------------------------------------------------------------------------------------------
/**
 * An authorizer that signs like Laravel's pusher/reverb broadcaster with `secret`.
 * Presence channels get channel_data {user_id, user_info:{id, name}}.
 */
export function laravelAuthorizer({ key = APP_KEY, secret = APP_SECRET, userId = 1, userName } = {}) {
  return (channel) => ({
    authorize(socketId, callback) {
      const name = channel.name;
      if (name.startsWith('presence-')) {
        const channelData = presenceData(userId, userName);
        callback(null, { auth: signPresence(socketId, name, channelData, { key, secret }), channel_data: channelData });
      } else if (name.startsWith('private-encrypted-')) {
        callback(null, { auth: signPrivate(socketId, name, { key, secret }), shared_secret: sharedSecret(name) });
      } else {
        callback(null, { auth: signPrivate(socketId, name, { key, secret }) });
      }
    },
  });
}

export function makeEcho({ port, key = APP_KEY, secret = APP_SECRET, userId = 1, userName, authorizer, pusherOptions = {} } = {}) {
  const echo = new Echo({
    broadcaster: 'reverb',
    key,
    wsHost: '127.0.0.1',
    wsPort: port,
    wssPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    Pusher,
    authorizer: authorizer ?? laravelAuthorizer({ key, secret, userId, userName }),
    ...pusherOptions,
  });
  const conn = echo.connector.pusher.connection;
  echo.frames = [];
  conn.bind('message', (ev) => echo.frames.push(ev));
  echo.states = [];
  conn.bind('state_change', (s) => echo.states.push(s.current));
  openClients.add(async () => { echo.disconnect(); });
  return echo;
}

export function echoState(echo) {
  return echo.connector.pusher.connection.state;
}

export async function echoConnected(echo, timeout = 10000) {
  await waitFor(() => echoState(echo) === 'connected', { timeout, what: 'pusher-js to be connected' });
  return echo.socketId();
}

/** Resolve when an Echo channel is subscribed; reject on subscription_error. */
export function echoSubscribed(channel, timeout = 10000) {
  if (channel.subscription?.subscribed) return Promise.resolve();
  return waitFor(new Promise((resolve, reject) => {
    channel.subscribed(() => resolve());
    channel.error((err) => reject(Object.assign(new Error(`subscription error: ${JSON.stringify(err)}`), { data: err })));
  }), { timeout, what: `subscription to ${channel.name}` });
}

/**
 * Two Echo clients listening on the same channel: `listen(echo, fn)` subscribes one and returns its channel.
 * Resolves once both are subscribed, with the first one's socket id (for toOthers / socket_id checks).
 */
export async function twoEchoListeners(port, listen) {
  const a = makeEcho({ port });
  const b = makeEcho({ port });
  const socketA = await echoConnected(a);
  await echoConnected(b);
  const recA = recorder();
  const recB = recorder();
  await echoSubscribed(listen(a, recA.fn));
  await echoSubscribed(listen(b, recB.fn));
  return { socketA, recA, recB };
}

/** Collects listener calls: `const rec = recorder(); channel.listen('X', rec.fn); await rec.next()`. */
export function recorder() {
  const calls = [];
  const waiters = [];
  const fn = (arg) => {
    calls.push(arg);
    for (const w of [...waiters]) {
      if (calls.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(calls[w.n - 1]);
      }
    }
  };
  return {
    fn,
    calls,
    get count() { return calls.length; },
    /** Wait until the n-th call (1-based; default: one more than now) has happened. */
    next(n = calls.length + 1, timeout = 5000, label = 'listener call') {
      if (calls.length >= n) return Promise.resolve(calls[n - 1]);
      return waitFor(new Promise((resolve) => waiters.push({ n, resolve })), { timeout, what: `${label} #${n}` });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Raw WebSocket client (ws)
// ---------------------------------------------------------------------------------------------
export function dataOf(frame) {
  if (!frame) return undefined;
  if (typeof frame.data === 'string') {
    try { return JSON.parse(frame.data); } catch { return frame.data; }
  }
  return frame.data;
}

export function errorCode(frame) {
  const d = dataOf(frame);
  return d && typeof d === 'object' ? Number(d.code) : undefined;
}

function matcher(pred) {
  if (typeof pred === 'function') return pred;
  if (typeof pred === 'string') return (f) => f.event === pred;
  if (pred && typeof pred === 'object') {
    return (f) => Object.entries(pred).every(([k, v]) => f[k] === v);
  }
  return () => true;
}

/**
 * Open a raw Pusher-protocol connection. By default waits for pusher:connection_established
 * (set `established: false` to inspect refusals). Frames are parsed into `frames`.
 * `next(pred, timeout)` returns the first not-yet-taken frame matching pred (event name,
 * {field: value} object, or function), waiting if needed.
 */
export async function rawClient(port, key = APP_KEY, query = 'protocol=7&client=js&version=8.6.0', {
  established = true, store = true, onFrame, timeout = 10000, path: urlPath, headers,
} = {}) {
  const url = `ws://127.0.0.1:${port}${urlPath ?? `/app/${key}`}${query ? `?${query}` : ''}`;
  const ws = new WebSocket(url, { perMessageDeflate: false, headers });
  const client = {
    ws,
    url,
    store,
    frames: [],
    rawCount: 0,
    taken: new Set(),
    waiters: [],
    socketId: undefined,
    activityTimeout: undefined,
    closeCode: undefined,
    closeReason: undefined,
    unexpectedResponse: undefined,
    error: undefined,
    isOpen: () => ws.readyState === WebSocket.OPEN,
    send(obj) {
      ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
    },
    next(pred, wait = 5000) {
      const m = matcher(pred);
      const found = client._take(m);
      if (found) return Promise.resolve(found);
      if (client.closeCode !== undefined) {
        return Promise.reject(new Error(`socket already closed (code ${client.closeCode}) while waiting for frame ${describePred(pred)}; frames: ${client.dump()}`));
      }
      let entry;
      const p = new Promise((resolve, reject) => { entry = { m, resolve, reject, pred }; client.waiters.push(entry); });
      return waitFor(p, { timeout: wait, what: `frame ${describePred(pred)}` }).catch((e) => {
        const i = client.waiters.indexOf(entry);
        if (i >= 0) client.waiters.splice(i, 1);
        e.message += `; frames so far: ${client.dump()}`;
        throw e;
      });
    },
    /** Frames (taken or not) matching pred. */
    all(pred) { return client.frames.filter(matcher(pred)); },
    _take(m) {
      for (let i = 0; i < client.frames.length; i++) {
        if (!client.taken.has(i) && m(client.frames[i])) {
          client.taken.add(i);
          return client.frames[i];
        }
      }
      return undefined;
    },
    dump(max = 1500) {
      const s = JSON.stringify(client.frames);
      return s.length > max ? `${s.slice(0, max)}...(${client.frames.length} frames)` : s;
    },
    subscribe(channel, extra = {}) {
      client.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
    },
    /** Subscribe and wait for subscription_succeeded (throws on subscription_error). */
    async subscribeOk(channel, extra = {}, wait = 5000) {
      client.subscribe(channel, extra);
      const f = await client.next((x) => x.channel === channel
        && (x.event === 'pusher_internal:subscription_succeeded' || x.event === 'pusher:subscription_error'), wait);
      if (f.event !== 'pusher_internal:subscription_succeeded') {
        throw new Error(`subscription to ${channel} failed: ${JSON.stringify(f)}`);
      }
      return f;
    },
    async subscribePrivate(channel, opts = {}) {
      return client.subscribeOk(channel, { auth: signPrivate(client.socketId, channel, opts) });
    },
    async subscribePresence(channel, userId, name, opts = {}) {
      const channelData = presenceData(userId, name);
      return client.subscribeOk(channel, { auth: signPresence(client.socketId, channel, channelData, opts), channel_data: channelData });
    },
    /** Round trip a pusher:ping; every frame sent before has then been processed by the server. */
    async ping(wait = 5000) {
      client.send({ event: 'pusher:ping', data: {} });
      return client.next('pusher:pong', wait);
    },
    close(code = 1000) {
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(code);
      return client.closed;
    },
    terminate() { ws.terminate(); return client.closed; },
    /** Wait for the socket to be closed; resolves {code, reason}. */
    waitClosed(wait = 5000) {
      return waitFor(client.closed, { timeout: wait, what: `socket close; frames: ${client.dump(600)}` });
    },
  };

  client.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      client.closeCode = code;
      client.closeReason = reason.toString();
      for (const w of client.waiters.splice(0)) {
        w.reject(new Error(`socket closed (code ${code} ${client.closeReason}) while waiting for frame ${describePred(w.pred)}; frames: ${client.dump()}`));
      }
      resolve({ code, reason: client.closeReason });
    });
  });
  ws.on('error', (e) => {
    client.error = e;
    const m = /Unexpected server response: (\d+)/.exec(e.message);
    if (m) client.unexpectedResponse = Number(m[1]);
  });
  ws.on('message', (raw, isBinary) => {
    client.rawCount++;
    if (onFrame) onFrame(raw, isBinary);
    if (!client.store) return;
    let frame;
    const text = raw.toString('utf8');
    try { frame = JSON.parse(text); } catch { frame = { event: '<non-json>', raw: text, binary: isBinary }; }
    if (frame.event === 'pusher:connection_established' && client.socketId === undefined) {
      const d = dataOf(frame);
      client.socketId = d?.socket_id;
      client.activityTimeout = d?.activity_timeout;
    }
    const idx = client.frames.push(frame) - 1;
    for (const w of [...client.waiters]) {
      if (!client.taken.has(idx) && w.m(frame)) {
        client.taken.add(idx);
        client.waiters.splice(client.waiters.indexOf(w), 1);
        w.resolve(frame);
        break;
      }
    }
  });

  openClients.add(async () => {
    if (ws.readyState !== WebSocket.CLOSED) {
      ws.terminate();
      await waitFor(client.closed, { timeout: 2000, what: 'raw socket to close' }).catch(() => {});
    }
  });

  if (established) {
    try {
      await client.next('pusher:connection_established', timeout);
    } catch (e) {
      ws.terminate();
      throw e;
    }
  }
  return client;
}

function describePred(pred) {
  if (typeof pred === 'string') return pred;
  if (typeof pred === 'function') return pred.toString().slice(0, 160);
  return JSON.stringify(pred);
}

// ---------------------------------------------------------------------------------------------
// HTTP API (official pusher server SDK)
// ---------------------------------------------------------------------------------------------
const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });

export function pusherServer(port, { appId = APP_ID, key = APP_KEY, secret = APP_SECRET, keepAlive = false, ...rest } = {}) {
  return new PusherServer({
    appId,
    key,
    secret,
    host: '127.0.0.1',
    port: String(port),
    useTLS: false,
    timeout: 10000,
    encryptionMasterKeyBase64: MASTER_KEY_B64,
    ...(keepAlive ? { agent: keepAliveAgent } : {}),
    ...rest,
  });
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy that counts connections (to count pusher-js reconnect attempts).
// ---------------------------------------------------------------------------------------------
export async function countingProxy(targetPort) {
  const proxy = await linkProxy(targetPort);
  openClients.add(() => proxy.close());
  return proxy;
}

export { WebSocket, Pusher, Echo, PusherServer };

/** Debian's Chromium, headless, with the flags this machine's closed network needs (playwright-core). */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
