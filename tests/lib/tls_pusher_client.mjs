// A pusher-js client in its own process, so that it can trust a test CA (NODE_EXTRA_CA_CERTS is read at start).
// Connects with forceTLS to HOST:PORT, subscribes to CHANNEL, and prints one JSON line per thing that happens.
import Pusher from 'pusher-js';

const [port, channel] = process.argv.slice(2);
const pusher = new Pusher('app-key', {
  wsHost: 'localhost', wsPort: Number(port), wssPort: Number(port), forceTLS: true, enabledTransports: ['ws', 'wss'],
  cluster: 'mt1', disableStats: true,
});
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
pusher.connection.bind('state_change', (s) => say({ state: s.current }));
pusher.connection.bind('error', (e) => say({ error: String(e?.error?.data?.message ?? e?.type ?? e) }));
const ch = pusher.subscribe(channel);
ch.bind('pusher:subscription_succeeded', () => say({ subscribed: channel }));
ch.bind_global((event, data) => { if (!event.startsWith('pusher:')) say({ event, data }); });
setTimeout(() => process.exit(0), 60000).unref();
