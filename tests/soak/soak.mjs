// Soak: a mixed workload on two Herald nodes and one Redis for SOAK_SECS (default 300; 3600 for the record),
// printing every SOAK_REPORT_SECS the RSS and open descriptors of each node, Redis's key count, and the p99
// of HTTP-API-to-client latency in that interval. The workload: connect churn (short-lived connections on
// public channels), presence churn (joins and leaves on one presence channel), fan-out (subscribers on one
// channel fed by the HTTP API), channel queries, a node restarted (SIGTERM, drained, started again) and Redis
// restarted empty, each at a third and two thirds of the run. A CSV of the reports goes to target/soak/.
//
// Run: HERALD_BIN=target/release/herald SOAK_SECS=3600 node tests/soak/soak.mjs (make soak).
// It exits 1 if a node died on its own or a client saw a frame it could not parse.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  startRedis, startHerald, WebSocket, pusherServer, signPresence, presenceData, REPO_ROOT, APP_KEY,
} from '../lib/harness.mjs';

const SECS = Number(process.env.SOAK_SECS || 300);
const REPORT_SECS = Number(process.env.SOAK_REPORT_SECS || Math.max(10, Math.min(60, SECS / 10)));
const FANOUT = Number(process.env.SOAK_FANOUT || 200);
const RATE = Number(process.env.SOAK_RATE || 20);
const CHURN = Number(process.env.SOAK_CHURN || 20);
const PRESENCE = Number(process.env.SOAK_PRESENCE || 50);
const env = { RUST_LOG: 'warn', HERALD_DRAIN_SECS: '2', HERALD_PRESENCE_GRACE_MS: '1000' };

const now = () => performance.timeOrigin + performance.now();
const stats = { latencies: [], delivered: 0, sent: 0, badFrames: 0, opened: 0, refused: 0, joins: 0, leaves: 0, apiErrors: 0 };
let stopping = false;

const redis = await startRedis();
const nodes = [await startHerald({ redisUrl: redis.url, env }), await startHerald({ redisUrl: redis.url, env })];
const alive = () => nodes.filter((n) => n.alive() && !n.restarting);
const pick = (i) => { const a = alive(); return a[i % a.length]; };
let crashed = null;
for (const n of nodes) watchCrash(n);
function watchCrash(node) {
  const timer = setInterval(() => {
    if (!node.alive() && !node.stopping && !stopping) { crashed = `node :${node.port} exited: ${node.logs().slice(-2000)}`; clearInterval(timer); }
  }, 500);
  node.watch = timer;
}

/** A WebSocket client that reconnects (to whichever node is up) when it is closed, unless told to stop. */
function client(i, { onOpen, onFrame, reconnect = true }) {
  const c = { stopped: false, ws: null, socketId: null };
  const open = () => {
    if (c.stopped || stopping) return;
    const node = pick(i);
    const ws = new WebSocket(`ws://127.0.0.1:${node.port}/app/${APP_KEY}?protocol=7&client=soak&version=1`, { perMessageDeflate: false });
    c.ws = ws;
    ws.on('message', (data) => {
      let f;
      try { f = JSON.parse(data.toString()); } catch { stats.badFrames++; return; }
      if (f.event === 'pusher:connection_established') {
        c.socketId = JSON.parse(f.data).socket_id;
        stats.opened++;
        onOpen?.(c);
      } else if (f.event === 'pusher:ping') {
        c.send({ event: 'pusher:pong', data: {} });
      } else if (f.event === 'pusher:error') {
        stats.refused++;
      } else onFrame?.(f, c);
    });
    ws.on('error', () => {});
    ws.on('close', () => { if (reconnect && !c.stopped) setTimeout(open, 200 + Math.random() * 300); });
  };
  c.send = (o) => { if (c.ws?.readyState === WebSocket.OPEN) c.ws.send(JSON.stringify(o)); };
  c.close = () => { c.stopped = true; try { c.ws?.close(); } catch { /* gone */ } };
  open();
  return c;
}

// Fan-out subscribers.
const subscribers = [];
for (let i = 0; i < FANOUT; i++) {
  subscribers.push(client(i, {
    onOpen: (c) => c.send({ event: 'pusher:subscribe', data: { channel: 'soak-fanout' } }),
    onFrame: (f) => {
      if (f.event !== 'tick') return;
      stats.delivered++;
      stats.latencies.push(now() - JSON.parse(f.data).t);
    },
  }));
}

// The HTTP API: RATE events per second to the fan-out channel, and a channel query each second.
let apiTurn = 0;
const tick = setInterval(() => {
  const node = pick(apiTurn++);
  if (!node) return;
  stats.sent++;
  pusherServer(node.port).trigger('soak-fanout', 'tick', { t: now() }).catch(() => { stats.apiErrors++; });
}, 1000 / RATE);
const query = setInterval(() => {
  const node = pick(apiTurn++);
  if (node) pusherServer(node.port).get({ path: '/channels', params: { info: 'subscription_count' } }).catch(() => { stats.apiErrors++; });
}, 1000);

// Connect churn: CHURN short-lived connections a second, each on one of 50 public channels for 1-3 s.
let churnTurn = 0;
const churn = setInterval(() => {
  for (let k = 0; k < CHURN; k++) {
    const n = churnTurn++;
    const c = client(n, {
      reconnect: false,
      onOpen: (me) => {
        me.send({ event: 'pusher:subscribe', data: { channel: `churn-${n % 50}` } });
        setTimeout(() => me.close(), 1000 + Math.random() * 2000);
      },
    });
    setTimeout(() => c.close(), 5000);
  }
}, 1000);

// Presence churn: PRESENCE slots; every 100 ms one slot joins or leaves presence-soak.
const slots = new Array(PRESENCE).fill(null);
let slotTurn = 0;
const presence = setInterval(() => {
  const s = slotTurn++ % PRESENCE;
  if (slots[s]) { slots[s].close(); slots[s] = null; stats.leaves++; return; }
  slots[s] = client(s, {
    onOpen: (c) => {
      const channelData = presenceData(`user-${s}`, `User ${s}`);
      c.send({ event: 'pusher:subscribe', data: { channel: 'presence-soak', auth: signPresence(c.socketId, 'presence-soak', channelData), channel_data: channelData } });
      stats.joins++;
    },
  });
}, 100);

// Faults: a node restarted at a third of the run, Redis restarted at two thirds.
const faults = [];
faults.push(setTimeout(async () => {
  const old = nodes[1];
  old.restarting = true;
  old.stopping = true;
  await old.stop();
  nodes[1] = await startHerald({ redisUrl: redis.url, env });
  watchCrash(nodes[1]);
  console.log(`# ${elapsed()} s: node restarted (:${old.port} -> :${nodes[1].port})`);
}, (SECS * 1000) / 3));
faults.push(setTimeout(async () => {
  await redis.restart();
  console.log(`# ${elapsed()} s: Redis restarted empty`);
}, (SECS * 2000) / 3));

const started = Date.now();
const elapsed = () => Math.round((Date.now() - started) / 1000);
const rows = [];
function procStat(pid) {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    return { rss_mb: (rss / 1024).toFixed(1), fds };
  } catch { return { rss_mb: '-', fds: '-' }; }
}
function redisKeys() {
  try { return execFileSync('redis-cli', ['-p', String(redis.port), 'dbsize'], { timeout: 2000 }).toString().trim(); } catch { return '-'; }
}
function p99(values) {
  if (values.length === 0) return '-';
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))].toFixed(1);
}
console.log('elapsed_s,node0_rss_mb,node0_fds,node1_rss_mb,node1_fds,redis_keys,p99_ms,delivered,sent,api_errors,refused,bad_frames');
const report = setInterval(() => {
  const [a, b] = nodes.map((n) => procStat(n.pid));
  const row = [elapsed(), a.rss_mb, a.fds, b.rss_mb, b.fds, redisKeys(), p99(stats.latencies), stats.delivered, stats.sent, stats.apiErrors, stats.refused, stats.badFrames];
  stats.latencies = [];
  rows.push(row);
  console.log(row.join(','));
}, REPORT_SECS * 1000);

await new Promise((resolve) => {
  const end = setTimeout(resolve, SECS * 1000);
  const check = setInterval(() => { if (crashed) { clearTimeout(end); resolve(); } }, 500);
  end.unref?.();
  setTimeout(() => clearInterval(check), SECS * 1000 + 100);
});
stopping = true;
for (const t of [tick, query, churn, presence, report]) clearInterval(t);
for (const t of faults) clearTimeout(t);
for (const c of [...subscribers, ...slots.filter(Boolean)]) c.close();
const dir = path.join(REPO_ROOT, 'target', 'soak');
fs.mkdirSync(dir, { recursive: true });
const csv = path.join(dir, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.csv`);
fs.writeFileSync(csv, ['elapsed_s,node0_rss_mb,node0_fds,node1_rss_mb,node1_fds,redis_keys,p99_ms,delivered,sent,api_errors,refused,bad_frames', ...rows.map((r) => r.join(','))].join('\n') + '\n');
for (const n of nodes) { n.stopping = true; clearInterval(n.watch); if (n.alive()) await n.stop(); }
await redis.stop();
console.log(`# ${SECS} s soak done; CSV: ${path.relative(REPO_ROOT, csv)}; joins ${stats.joins}, leaves ${stats.leaves}, connections opened ${stats.opened}`);
if (crashed) { console.error(`# FAILED: ${crashed}`); process.exit(1); }
if (stats.badFrames > 0) { console.error(`# FAILED: ${stats.badFrames} frames did not parse`); process.exit(1); }
process.exit(0);
