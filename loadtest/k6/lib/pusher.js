// Shared helpers for the Herald k6 load tests: configuration, Pusher signatures, the HTTP API trigger and a
// WebSocket connection that subscribes to one channel and answers the server's pings.
// Uses k6/experimental/websockets (event driven, several sockets per VU, async/await).

import { WebSocket } from 'k6/experimental/websockets';
import { setTimeout, clearTimeout } from 'k6/timers';
import crypto from 'k6/crypto';
import http from 'k6/http';

// ---- configuration (env) -----------------------------------------------------------------------------------
export const cfg = {
  host: __ENV.HERALD_HOST || '127.0.0.1',
  port: __ENV.HERALD_PORT || '6001',
  appId: __ENV.HERALD_APP_ID || 'app-id',
  key: __ENV.HERALD_APP_KEY || 'app-key',
  secret: __ENV.HERALD_APP_SECRET || 'app-secret',
};
export const httpBase = `http://${cfg.host}:${cfg.port}`;

export function wsUrl() {
  return `ws://${cfg.host}:${cfg.port}/app/${cfg.key}?protocol=7&client=js&version=8.6.0&flash=false`;
}

/** Integer from env `name`, or `def`. */
export function envInt(name, def) {
  const v = __ENV[name];
  if (v === undefined || v === '') return def;
  const n = parseInt(v, 10);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v} is not an integer`);
  return n;
}

/** Duration from env `name` ("500ms", "15s", "2m", "1h" or plain seconds) in milliseconds. */
export function envMs(name, def) {
  const v = __ENV[name] === undefined || __ENV[name] === '' ? def : __ENV[name];
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(v).trim());
  if (!m) throw new Error(`${name}=${v} is not a duration`);
  const mult = { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] || 's'];
  return Math.round(parseFloat(m[1]) * mult);
}

/** A k6 duration string for milliseconds. */
export const dur = (ms) => `${Math.ceil(ms)}ms`;

/** A promise resolved after `ms` (does not block the VU's event loop, unlike k6's sleep). */
export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

// ---- signatures ----------------------------------------------------------------------------------------------
const hmacHex = (data) => crypto.hmac('sha256', cfg.secret, data, 'hex');

/** `auth` of a private channel subscription. */
export function privateAuth(socketId, channel) {
  return `${cfg.key}:${hmacHex(`${socketId}:${channel}`)}`;
}

/** `auth` of a presence channel subscription; `channelData` is the exact JSON string sent. */
export function presenceAuth(socketId, channel, channelData) {
  return `${cfg.key}:${hmacHex(`${socketId}:${channel}:${channelData}`)}`;
}

/**
 * Signed query string of an HTTP API request (auth_version 1.0): every param but auth_signature, keys sorted,
 * values not url-encoded in the string to sign.
 */
export function signedQuery(method, path, body, extra = {}, opts = {}) {
  const key = opts.key || cfg.key;
  const secret = opts.secret || cfg.secret;
  const params = Object.assign(
    {
      auth_key: key,
      auth_timestamp: String(opts.timestamp || Math.floor(Date.now() / 1000)),
      auth_version: '1.0',
    },
    extra,
  );
  if (body) params.body_md5 = crypto.md5(body, 'hex');
  const keys = Object.keys(params).sort();
  const toSign = `${method.toUpperCase()}\n${path}\n${keys.map((k) => `${k}=${params[k]}`).join('&')}`;
  const signature = crypto.hmac('sha256', secret, toSign, 'hex');
  return `${keys.map((k) => `${k}=${encodeURIComponent(params[k])}`).join('&')}&auth_signature=${signature}`;
}

/** Checks the signing code against the test vector of Pusher's docs; throws on a mismatch. */
export function selfTest() {
  const q = signedQuery(
    'POST',
    '/apps/3/events',
    '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}',
    {},
    { key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8', timestamp: 1353088179 },
  );
  const want =
    'auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f' +
    '&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c';
  if (q !== want) throw new Error(`HTTP API signing is wrong:\n got ${q}\nwant ${want}`);
}

/** Triggers event `name` with `data` (a string) on `channels` through `POST /apps/{id}/events`. */
export function trigger(channels, name, data, params = {}) {
  const body = JSON.stringify({ name, channels, data });
  const path = `/apps/${cfg.appId}/events`;
  return http.post(`${httpBase}${path}?${signedQuery('POST', path, body)}`, body, {
    headers: { 'Content-Type': 'application/json' },
    tags: Object.assign({ name: 'POST /apps/{id}/events' }, params.tags || {}),
    timeout: params.timeout || '10s',
  });
}

/** Server `data` is a JSON string (sometimes an object): returns the parsed value, or null. */
export function parseData(data) {
  if (typeof data !== 'string') return data === undefined ? null : data;
  try {
    return JSON.parse(data);
  } catch (_) {
    return null;
  }
}

// ---- connection ----------------------------------------------------------------------------------------------
/**
 * Opens a connection and subscribes to `channel` (public, private-*, presence-*), signing as the app would.
 * Returns a handle at once; `await conn.ready` gives true once subscribed, false on any failure (the reason is in
 * `conn.error`). `conn.subscribeMs` is the time from opening the socket to subscription_succeeded.
 *
 * opts: user (presence: {id, info}), timeoutMs (subscribe deadline, default 10 s),
 *       onSubscribed(conn, data), onEvent(msg, conn) for every other frame, onClose(conn).
 * The handle: send(event, data, channel), ping() (promise of the server's pong: a barrier, since the server
 * handles one connection's frames in order), unsubscribe(), close(), closed, closedByUs, socketId.
 */
export function connectAndSubscribe(channel, opts = {}) {
  const started = Date.now();
  const conn = {
    channel,
    socketId: null,
    subscribed: false,
    subscribeMs: null,
    error: null,
    closed: false,
    closedByUs: false,
    serverPings: 0,
  };
  const pongWaiters = [];
  let resolveReady;
  conn.ready = new Promise((resolve) => (resolveReady = resolve));

  const ws = new WebSocket(wsUrl());
  let timer = setTimeout(() => fail(`no subscription_succeeded within ${opts.timeoutMs || 10000} ms`), opts.timeoutMs || 10000);

  function fail(reason) {
    if (conn.subscribed || conn.error) return;
    conn.error = reason;
    clearTimeout(timer);
    resolveReady(false);
    conn.close();
  }

  conn.send = (event, data, ch) => {
    const frame = { event, data };
    if (ch !== undefined) frame.channel = ch;
    ws.send(JSON.stringify(frame));
  };
  conn.ping = (timeoutMs = 5000) =>
    new Promise((resolve) => {
      if (conn.closed) return resolve(false);
      const t = setTimeout(() => {
        const i = pongWaiters.indexOf(w);
        if (i >= 0) pongWaiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      const w = (ok) => {
        clearTimeout(t);
        resolve(ok);
      };
      pongWaiters.push(w);
      conn.send('pusher:ping', {});
    });
  conn.unsubscribe = () => conn.send('pusher:unsubscribe', { channel });
  conn.close = () => {
    if (conn.closedByUs) return;
    conn.closedByUs = true;
    clearTimeout(timer);
    try {
      ws.close();
    } catch (_) {
      /* already closed */
    }
  };

  ws.onmessage = (e) => {
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch (_) {
      return;
    }
    switch (msg.event) {
      case 'pusher:connection_established': {
        const d = parseData(msg.data) || {};
        conn.socketId = d.socket_id;
        const sub = { channel, auth: '' };
        if (channel.startsWith('presence-')) {
          const user = opts.user || { id: `u-${conn.socketId}`, info: {} };
          sub.channel_data = JSON.stringify({ user_id: String(user.id), user_info: user.info || {} });
          sub.auth = presenceAuth(conn.socketId, channel, sub.channel_data);
        } else if (channel.startsWith('private-')) {
          sub.auth = privateAuth(conn.socketId, channel);
        }
        conn.send('pusher:subscribe', sub);
        break;
      }
      case 'pusher_internal:subscription_succeeded':
        if (msg.channel === channel && !conn.subscribed && !conn.error) {
          conn.subscribed = true;
          conn.subscribeMs = Date.now() - started;
          clearTimeout(timer);
          if (opts.onSubscribed) opts.onSubscribed(conn, parseData(msg.data));
          resolveReady(true);
        }
        break;
      case 'pusher:subscription_error':
        fail(`subscription_error ${JSON.stringify(msg.data)}`);
        break;
      case 'pusher:error':
        if (!conn.subscribed) fail(`pusher:error ${JSON.stringify(msg.data)}`);
        else if (opts.onEvent) opts.onEvent(msg, conn);
        break;
      case 'pusher:ping':
        conn.serverPings++;
        conn.send('pusher:pong', {});
        break;
      case 'pusher:pong': {
        const w = pongWaiters.shift();
        if (w) w(true);
        break;
      }
      default:
        if (opts.onEvent) opts.onEvent(msg, conn);
    }
  };
  ws.onerror = (e) => fail(`websocket error: ${e && e.error}`);
  ws.onclose = () => {
    conn.closed = true;
    clearTimeout(timer);
    while (pongWaiters.length) pongWaiters.shift()(false);
    if (!conn.subscribed) fail('closed before subscription_succeeded');
    if (opts.onClose) opts.onClose(conn);
  };
  return conn;
}

/** Value of the first sample of Prometheus metric `name` (with optional exact label text) at GET /metrics. */
export function scrapeMetric(name, labels = '') {
  const res = http.get(`${httpBase}/metrics`, { tags: { name: 'GET /metrics' } });
  if (res.status !== 200) return null;
  // The sum over every series that carries `labels` (herald_connections has one per protocol).
  let sum = null;
  for (const line of String(res.body).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const given = labels ? labels.split(',') : [];
    const have = (m[2] ?? '').split(',');
    if (given.every((l) => have.includes(l))) sum = (sum ?? 0) + parseFloat(m[3]);
  }
  return sum;
}
