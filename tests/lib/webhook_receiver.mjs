// A real HTTP endpoint for webhooks: records every request, checks Pusher's signature, and can be told to
// fail the next N requests or to hang.
import http from 'node:http';
import crypto from 'node:crypto';
import { waitFor } from './harness.mjs';

export async function startReceiver({ secret, key }) {
  const received = [];
  let failNext = 0;
  let hang = false;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const expected = crypto.createHmac('sha256', secret).update(body).digest('hex');
      const entry = {
        body: JSON.parse(body),
        validSignature: req.headers['x-pusher-signature'] === expected && req.headers['x-pusher-key'] === key,
        status: 200,
      };
      if (hang) return; // never answers
      if (failNext > 0) {
        failNext -= 1;
        entry.status = 500;
      }
      received.push(entry);
      res.writeHead(entry.status, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const accepted = () => received.filter((r) => r.status === 200);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    failNext(n) { failNext = n; },
    hang(on = true) { hang = on; },
    /** Events from requests answered 200, flattened. */
    events: () => accepted().flatMap((r) => r.body.events),
    count: (pred) => accepted().flatMap((r) => r.body.events).filter(pred).length,
    async waitEvent(pred, what, timeout = 10000) {
      await waitFor(() => accepted().flatMap((r) => r.body.events).some(pred), { timeout, what });
    },
    close: () => { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); },
  };
}
