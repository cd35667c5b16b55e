// Idle connections: LOAD_VUS VUs each open one connection, subscribe to a public, private or presence channel and
// hold it (answering the server's pings) until LOAD_RAMP + LOAD_DURATION after the start, then check it still
// answers a ping. Connections are opened evenly over LOAD_RAMP.
//
// env: LOAD_VUS (50), LOAD_DURATION (10s, time all connections are held together), LOAD_RAMP (2s),
//      LOAD_CHANNELS (10 per type), LOAD_CHANNEL_TYPE (mixed | public | private | presence),
//      LOAD_SUBSCRIBE_P95_MS (1000); HERALD_HOST/PORT/APP_* (see lib/pusher.js).

import exec from 'k6/execution';
import { Trend, Rate, Counter, Gauge } from 'k6/metrics';
import { connectAndSubscribe, delay, dur, envInt, envMs, scrapeMetric, selfTest, cfg } from './lib/pusher.js';

const VUS = envInt('LOAD_VUS', 50);
const HOLD_MS = envMs('LOAD_DURATION', '10s');
const RAMP_MS = envMs('LOAD_RAMP', '2s');
const CHANNELS = envInt('LOAD_CHANNELS', 10);
const TYPE = __ENV.LOAD_CHANNEL_TYPE || 'mixed';
const P95_MS = envInt('LOAD_SUBSCRIBE_P95_MS', 1000);
const TYPES = TYPE === 'mixed' ? ['public', 'private', 'presence'] : [TYPE];
if (!TYPES.every((t) => ['public', 'private', 'presence'].includes(t))) throw new Error(`LOAD_CHANNEL_TYPE=${TYPE}?`);
// A presence channel holds at most 100 users: spread presence VUs so that no channel gets more than 90.
const PRESENCE_CHANNELS = Math.max(CHANNELS, Math.ceil(VUS / TYPES.length / 90));

const connectSubscribe = new Trend('connect_subscribe_ms', true);
const subscribeErrors = new Rate('subscribe_errors');
const connectionsLost = new Rate('connections_lost');
const serverPings = new Counter('server_pings');
const serverConnections = new Gauge('server_connections');

export const options = {
  scenarios: {
    idle: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1,
      maxDuration: dur(RAMP_MS + HOLD_MS + 30000),
      exec: 'idle',
    },
    // Asks the server mid-test how many connections it holds (informational: right for one node only).
    probe: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: 1,
      startTime: dur(RAMP_MS + HOLD_MS / 2),
      exec: 'probe',
    },
  },
  thresholds: {
    subscribe_errors: ['rate<0.01'],
    connections_lost: ['rate<0.01'],
    [`connect_subscribe_ms`]: [`p(95)<${P95_MS}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  selfTest();
}

export async function idle() {
  const i = exec.scenario.iterationInTest; // 0..VUS-1, one iteration per VU
  const holdUntil = exec.scenario.startTime + RAMP_MS + HOLD_MS;
  await delay((RAMP_MS * i) / VUS);
  const type = TYPES[i % TYPES.length];
  const n = Math.floor(i / TYPES.length);
  const channel =
    type === 'public' ? `idle-${n % CHANNELS}` : type === 'private' ? `private-idle-${n % CHANNELS}` : `presence-idle-${n % PRESENCE_CHANNELS}`;
  const conn = connectAndSubscribe(channel, { user: { id: `idle-user-${i}`, info: { name: `user ${i}` } } });
  const ok = await conn.ready;
  subscribeErrors.add(!ok, { type });
  if (!ok) {
    console.warn(`VU ${i} ${channel}: ${conn.error}`);
    return;
  }
  connectSubscribe.add(conn.subscribeMs, { type });
  await delay(holdUntil - Date.now());
  // Still open and still served: the server answers a ping on this very connection.
  const alive = !conn.closed && (await conn.ping(5000));
  connectionsLost.add(!alive, { type });
  if (!alive) console.warn(`VU ${i} ${channel}: connection lost during the hold`);
  serverPings.add(conn.serverPings);
  conn.close();
}

export function probe() {
  const v = scrapeMetric('herald_connections', `app="${cfg.appId}"`);
  if (v !== null) serverConnections.add(v);
}
