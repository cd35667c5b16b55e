// Fires events through Laravel's real RedisBroadcaster (tests/php/broadcast.php).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './harness.mjs';

const SCRIPT = path.join(REPO_ROOT, 'tests', 'php', 'broadcast.php');

/**
 * laravelBroadcast(redisPort, {
 *   channels: [{type:'public'|'private'|'presence'|'encrypted', name}],
 *   event_class = 'OrderShipped', broadcast_as = null, data = {}, socket = null,
 *   prefix = 'laravel_database_', redis = {} (merged into Laravel's database.redis.default: TLS, ACL user),
 * })
 * Resolves once PHP has sent the EVAL; rejects on a non-zero exit.
 */
export function laravelBroadcast(redisPort, opts = {}) {
  const payload = {
    port: redisPort,
    prefix: 'laravel_database_',
    event_class: 'OrderShipped',
    broadcast_as: null,
    data: {},
    socket: null,
    ...opts,
  };
  if (!Array.isArray(payload.channels) || payload.channels.length === 0) {
    throw new Error('laravelBroadcast: channels required');
  }
  return new Promise((resolve, reject) => {
    execFile('php', [SCRIPT, JSON.stringify(payload)], { timeout: 15000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`php broadcast.php failed (${err.code ?? err.signal}): ${stderr || err.message}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}
