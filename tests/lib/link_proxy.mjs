// A TCP proxy standing for the network between a node and Redis: `cut()` drops every open connection and
// black-holes new ones (they connect to the proxy but nothing reaches Redis, as in a partition), `heal()`
// lets traffic through again. Closed after the test by `close()`.
import net from 'node:net';

export async function linkProxy(targetPort) {
  const pairs = new Set();
  const held = new Set();
  let cut = false;
  const server = net.createServer((inbound) => {
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
