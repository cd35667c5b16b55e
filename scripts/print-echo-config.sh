#!/usr/bin/env bash
# Prints what to put in Laravel's .env and in Echo for the node `make run` starts.
port="${HERALD_PORT:-6001}"
id="${HERALD_APP_ID:-${PUSHER_APP_ID:-app-id}}"
key="${HERALD_APP_KEY:-${PUSHER_APP_KEY:-app-key}}"
secret="${HERALD_APP_SECRET:-${PUSHER_APP_SECRET:-app-secret}}"
cat <<EOT

Herald is starting on port ${port} (embedded mode unless HERALD_REDIS_URL is set).

Laravel .env (pusher driver; the reverb driver takes the same values as REVERB_*):
  BROADCAST_DRIVER=pusher            # BROADCAST_CONNECTION on Laravel 11+
  PUSHER_APP_ID=${id}
  PUSHER_APP_KEY=${key}
  PUSHER_APP_SECRET=${secret}
  PUSHER_HOST=127.0.0.1
  PUSHER_PORT=${port}
  PUSHER_SCHEME=http

Echo (resources/js/echo.js):
  window.Echo = new Echo({
    broadcaster: 'reverb',
    key: '${key}',
    wsHost: window.location.hostname,
    wsPort: ${port},
    wssPort: ${port},
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
  });

With BROADCAST_DRIVER=redis, set HERALD_REDIS_URL (and HERALD_REDIS_PREFIX if REDIS_PREFIX is not
laravel_database_). docs/laravel.md has both setups.

EOT
