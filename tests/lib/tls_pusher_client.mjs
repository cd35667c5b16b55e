// laravel-echo on pusher-js in its own process, so that it can trust a test CA (NODE_EXTRA_CA_CERTS is read at
// start). Connects with forceTLS (wss://) to localhost:PORT, listens on CHANNEL, and prints one JSON line per
// thing that happens.
import Echo from 'laravel-echo';
import Pusher from 'pusher-js';

const [port, channel] = process.argv.slice(2);
const echo = new Echo({
  broadcaster: 'reverb',
  key: 'app-key',
  wsHost: 'localhost',
  wsPort: Number(port),
  wssPort: Number(port),
  forceTLS: true,
  enabledTransports: ['ws', 'wss'],
  Pusher,
});
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const connection = echo.connector.pusher.connection;
connection.bind('state_change', (s) => say({ state: s.current }));
connection.bind('error', (e) => say({ error: String(e?.error?.data?.message ?? e?.type ?? e) }));
echo.channel(channel)
  .subscribed(() => say({ subscribed: channel }))
  .listenToAll((event, data) => say({ event: event.replace(/^\./, ''), data }));
setTimeout(() => process.exit(0), 60000).unref();
