// Fan-out: LOAD_SUBSCRIBERS connections spread over LOAD_CHANNELS channels, and a publisher that triggers
// LOAD_RATE events a second for LOAD_DURATION through the HTTP API, round-robin over the channels. Each event
// carries its sequence number and its send time, so subscribers measure end-to-end latency (HTTP API -> WebSocket)
// and know exactly which events they should have received:
//   publishes P = LOAD_RATE x LOAD_DURATION (k6's dropped_iterations must be 0; extra iterations publish nothing), event seq goes to channel seq % K,
//   a subscriber of channel c expects every seq < P with seq % K == c,
//   deliveries expected = sum over publishes of the subscribers of its channel.
//
// env: LOAD_SUBSCRIBERS (50), LOAD_CHANNELS (5), LOAD_RATE (20 events/s), LOAD_DURATION (10s),
//      LOAD_WARMUP (3s, subscribers connect before publishing starts), LOAD_DRAIN (3s, wait for the last events),
//      LOAD_CHANNEL_TYPE (public | private), LOAD_PAYLOAD_BYTES (100), LOAD_P95_MS (250), LOAD_P99_MS (500).

import exec from 'k6/execution';
import { check } from 'k6';
import { Trend, Rate, Counter } from 'k6/metrics';
import { connectAndSubscribe, delay, dur, envInt, envMs, parseData, selfTest, trigger } from './lib/pusher.js';

const SUBSCRIBERS = envInt('LOAD_SUBSCRIBERS', 50);
const K = envInt('LOAD_CHANNELS', 5);
const RATE = envInt('LOAD_RATE', 20);
const PUBLISH_MS = envMs('LOAD_DURATION', '10s');
const WARMUP_MS = envMs('LOAD_WARMUP', '3s');
const DRAIN_MS = envMs('LOAD_DRAIN', '3s');
const TYPE = __ENV.LOAD_CHANNEL_TYPE || 'public';
const PAYLOAD_BYTES = envInt('LOAD_PAYLOAD_BYTES', 100);
const P95_MS = envInt('LOAD_P95_MS', 250);
const P99_MS = envInt('LOAD_P99_MS', 500);
if (K < 1 || K > 100) throw new Error('LOAD_CHANNELS must be 1..100');
if ((RATE * PUBLISH_MS) % 1000 !== 0) throw new Error('LOAD_RATE x LOAD_DURATION must be a whole number of events');
const PUBLISHES = (RATE * PUBLISH_MS) / 1000;
const EVENT = 'load.fanout';
const PAD = 'x'.repeat(PAYLOAD_BYTES);

const channelName = (c) => (TYPE === 'private' ? `private-fanout-${c}` : `fanout-${c}`);
/** Subscribers of channel c (subscriber s listens on s % K). */
const subscribersOf = (c) => Math.floor(SUBSCRIBERS / K) + (c < SUBSCRIBERS % K ? 1 : 0);
/** Publishes that go to channel c (seq % K == c, seq < P). */
const publishesTo = (c) => (c < PUBLISHES ? Math.floor((PUBLISHES - 1 - c) / K) + 1 : 0);

const deliveryLatency = new Trend('delivery_latency_ms', true);
const connectSubscribe = new Trend('connect_subscribe_ms', true);
const subscribeErrors = new Rate('subscribe_errors');
const publishErrors = new Rate('publish_errors');
const deliveryComplete = new Rate('delivery_complete');
const deliveriesExpected = new Counter('deliveries_expected');
const deliveriesReceived = new Counter('deliveries_received');
const deliveriesDuplicate = new Counter('deliveries_duplicate');
const deliveriesUnexpected = new Counter('deliveries_unexpected');
const publishes = new Counter('publishes_ok');

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      vus: SUBSCRIBERS,
      iterations: 1,
      maxDuration: dur(WARMUP_MS + PUBLISH_MS + DRAIN_MS + 30000),
      exec: 'subscriber',
    },
    publisher: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: dur(PUBLISH_MS),
      startTime: dur(WARMUP_MS),
      preAllocatedVUs: Math.max(2, Math.ceil(RATE / 20)),
      maxVUs: Math.max(10, RATE),
      gracefulStop: dur(DRAIN_MS),
      exec: 'publisher',
    },
  },
  thresholds: {
    delivery_latency_ms: [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    delivery_complete: ['rate>=0.99'],
    deliveries_duplicate: ['count==0'],
    deliveries_unexpected: ['count==0'],
    subscribe_errors: ['rate<0.01'],
    publish_errors: ['rate<0.01'],
    'dropped_iterations{scenario:publisher}': ['count==0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  selfTest();
}

export async function subscriber() {
  const s = exec.scenario.iterationInTest; // 0..SUBSCRIBERS-1
  const c = s % K;
  const channel = channelName(c);
  const publishStart = exec.scenario.startTime + WARMUP_MS;
  const seen = new Set();
  // Spread the connects over the first half of the warm-up.
  await delay(((WARMUP_MS / 2) * s) / SUBSCRIBERS);
  const conn = connectAndSubscribe(channel, {
    onEvent(msg) {
      if (msg.event !== EVENT) return;
      const now = Date.now();
      const d = parseData(msg.data);
      if (msg.channel !== channel || !d || typeof d.seq !== 'number' || d.seq >= PUBLISHES || d.seq % K !== c) {
        deliveriesUnexpected.add(1);
        return;
      }
      if (seen.has(d.seq)) {
        deliveriesDuplicate.add(1);
        return;
      }
      seen.add(d.seq);
      deliveriesReceived.add(1);
      deliveryLatency.add(now - d.t);
    },
  });
  const ok = await conn.ready;
  // Subscribed after publishing began would miss events through no fault of the server: an error of the setup.
  const late = ok && Date.now() > publishStart;
  subscribeErrors.add(!ok || late);
  if (!ok) console.warn(`subscriber ${s} ${channel}: ${conn.error}`);
  if (late) console.warn(`subscriber ${s} ${channel}: subscribed after publishing began; raise LOAD_WARMUP`);
  if (ok) connectSubscribe.add(conn.subscribeMs);
  await delay(publishStart + PUBLISH_MS + DRAIN_MS - Date.now());
  conn.close();
  if (!ok || late) return;
  const expected = publishesTo(c);
  deliveryComplete.add(seen.size === expected);
  if (seen.size !== expected) console.warn(`subscriber ${s} ${channel}: received ${seen.size} of ${expected}`);
}

export function publisher() {
  const seq = exec.scenario.iterationInTest;
  // k6 starts one iteration more than rate x duration (one at t=0 and one at t=duration): publish exactly P.
  if (seq >= PUBLISHES) return;
  const c = seq % K;
  const data = JSON.stringify({ seq, t: Date.now(), pad: PAD });
  const res = trigger([channelName(c)], EVENT, data);
  const ok = check(res, { 'trigger 200': (r) => r.status === 200 });
  publishErrors.add(!ok);
  if (ok) {
    publishes.add(1);
    deliveriesExpected.add(subscribersOf(c));
  } else {
    console.warn(`publish ${seq}: HTTP ${res.status} ${res.body}`);
  }
}
