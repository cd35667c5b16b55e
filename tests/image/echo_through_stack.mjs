// Run by scripts/image-test.sh against the compose stack: pusher-js (Echo) connects through the stack's load
// balancer and receives an event that Laravel's real RedisBroadcaster publishes to the stack's Redis.
// Usage: node image/echo_through_stack.mjs <load balancer port> <Redis port>
import assert from 'node:assert/strict';
import { makeEcho, echoConnected, echoSubscribed, recorder, closeClients } from '../lib/harness.mjs';
import { laravelBroadcast } from '../lib/laravel.mjs';

const [lbPort, redisPort] = process.argv.slice(2).map(Number);
const echo = makeEcho({ port: lbPort });
await echoConnected(echo, 20000);
const rec = recorder();
await echoSubscribed(echo.channel('orders').listen('OrderShipped', rec.fn));
const got = rec.next(1, 10000);
await laravelBroadcast(redisPort, { channels: [{ type: 'public', name: 'orders' }], data: { order: 42 } });
assert.deepEqual((await got).order, 42);
console.log(`Echo through the stack's load balancer (port ${lbPort}) received Laravel's event: order 42`);
await closeClients();
process.exit(0);
