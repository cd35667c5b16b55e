// A TCP proxy standing for the network between two parts (a node and Redis, a client and a node): it counts
// the connections made through it; `cut()` drops every open connection and black-holes new ones (they
// connect to the proxy but nothing gets through, as in a partition), `heal()` lets traffic through again.
// Closed after the test by `close()`.
import net from 'node:net';

export async function linkProxy(targetPort) {
  const pairs = new Set();
  const held = new Set();
  let cut = false;
  let connections = 0;
  const server = net.createServer((inbound) => {
    connections++;
    inbound.on('error', () => {});
    if (cut) {
      held.add(inbound);
      inbound.on('close', () => held.delete(inbound));
      return;
    }
    const outbound = net.connect(targetPort, '127.0.0.1');
    const pair = { inbound, outbound };
    pairs.add(pair);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const done = () => { inbound.destroy(); outbound.destroy(); pairs.delete(pair); };
    outbound.on('error', done);
    inbound.on('close', done);
    outbound.on('close', done);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    url: `redis://127.0.0.1:${server.address().port}`,
    /** Connections made through the proxy so far. */
    get connections() { return connections; },
    /** Drops every connection through the link and black-holes new ones until `heal()`. */
    cut() {
      cut = true;
      for (const { inbound, outbound } of pairs) { inbound.destroy(); outbound.destroy(); }
      pairs.clear();
    },
    /** Lets new connections through again (the black-holed ones are dropped, as a timed-out peer would). */
    heal() {
      cut = false;
      for (const s of held) s.destroy();
      held.clear();
    },
    close() {
      this.cut();
      this.heal();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
