//! `herald print-config`: what to put in Laravel's `.env` and in Echo to reach this server, computed from the
//! configuration the server would really use (the same flags, variables, file and Laravel fallbacks), for
//! each app and each driver: `pusher`, `reverb` (Laravel 11+, with the `VITE_*` lines Echo reads) and
//! `redis` (Laravel publishes to Redis; Echo authorises through Herald's auth endpoint). `make run` prints
//! it before starting the node.

use herald_server::config::Config;
use std::fmt::Write;

/// The text `herald print-config` prints.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    let host = config.local_host();
    let port = config.port;
    let (scheme, force_tls) = if config.tls.is_some() {
        ("https", true)
    } else {
        ("http", false)
    };
    let mode = match &config.redis_url {
        Some(_) => "cluster mode on Redis",
        None => "embedded mode (one node, no Redis)",
    };
    let _ = writeln!(out, "\nHerald will listen on {host}:{port} ({scheme}), {mode}.");
    if config.dev_app {
        let _ = writeln!(
            out,
            "No app is configured: the development app below is for trying Herald out. Set HERALD_APP_ID,\nHERALD_APP_KEY and HERALD_APP_SECRET (or Laravel's REVERB_APP_* / PUSHER_APP_*) before going live."
        );
    }
    for source in &config.sources {
        let _ = writeln!(out, "From Laravel's settings: {source}.");
    }
    for app in &config.apps {
        let (id, key, secret) = (&app.id, &app.key, &app.secret);
        let _ = writeln!(out, "\n=== App {id} ===");
        let (port, scheme) = (port.to_string(), scheme.to_string());
        env_block(
            &mut out,
            "Laravel .env, reverb driver (Laravel 11+; `php artisan install:broadcasting`):",
            &[
                ("BROADCAST_CONNECTION", "reverb"),
                ("REVERB_APP_ID", id),
                ("REVERB_APP_KEY", key),
                ("REVERB_APP_SECRET", secret),
                ("REVERB_HOST", host),
                ("REVERB_PORT", &port),
                ("REVERB_SCHEME", &scheme),
                ("VITE_REVERB_APP_KEY", "\"${REVERB_APP_KEY}\""),
                ("VITE_REVERB_HOST", "\"${REVERB_HOST}\""),
                ("VITE_REVERB_PORT", "\"${REVERB_PORT}\""),
                ("VITE_REVERB_SCHEME", "\"${REVERB_SCHEME}\""),
            ],
        );
        env_block(
            &mut out,
            "Laravel .env, pusher driver (any Laravel version; BROADCAST_CONNECTION on Laravel 11+):",
            &[
                ("BROADCAST_DRIVER", "pusher"),
                ("PUSHER_APP_ID", id),
                ("PUSHER_APP_KEY", key),
                ("PUSHER_APP_SECRET", secret),
                ("PUSHER_HOST", host),
                ("PUSHER_PORT", &port),
                ("PUSHER_SCHEME", &scheme),
                ("PUSHER_APP_CLUSTER", "mt1"),
            ],
        );
        match &config.redis_url {
            Some(_) => {
                let prefixes = app.redis_prefixes.join(", ");
                let auth = match &app.auth_url {
                    Some(url) => format!("Herald forwards the browser's auth requests to {url}"),
                    None => "set auth_url (HERALD_AUTH_URL) to Laravel's /broadcasting/auth, or private and presence subscriptions get 404".into(),
                };
                let _ = writeln!(
                    out,
                    "\nLaravel .env, redis driver (Laravel publishes to the Redis Herald reads, prefix {prefixes:?}):
  BROADCAST_DRIVER=redis             # BROADCAST_CONNECTION=redis on Laravel 11+
  (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD: the same Redis as HERALD_REDIS_URL)
  Echo then authorises through Herald: authEndpoint '{scheme}://{host}:{port}/herald/auth/{key}'; {auth}."
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "\nThe redis driver needs Redis: set HERALD_REDIS_URL (or Laravel's REDIS_HOST) to the Redis Laravel publishes to."
                );
            }
        }
        let _ = writeln!(
            out,
            "\nEcho (resources/js/echo.js), with either .env above:
  window.Echo = new Echo({{
    broadcaster: 'reverb',
    key: '{key}',                 // import.meta.env.VITE_REVERB_APP_KEY with the reverb .env
    wsHost: '{host}',
    wsPort: {port},
    wssPort: {port},
    forceTLS: {force_tls},
    enabledTransports: ['ws', 'wss'],
  }});"
        );
    }
    out.push_str("\ndocs/laravel.md explains each driver.\n");
    out
}

/// One `.env` block: a title, then `NAME=value` lines.
fn env_block(out: &mut String, title: &str, lines: &[(&str, &str)]) {
    let _ = writeln!(out, "\n{title}");
    for (name, value) in lines {
        let _ = writeln!(out, "  {name}={value}");
    }
}
