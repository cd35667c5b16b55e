#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: Redis, PHP with Laravel's framework
# (for Laravel's real RedisBroadcaster), and the npm packages of tests/ (pusher-js, laravel-echo, pusher).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server redis-tools)
command -v php >/dev/null || need_apt+=(php-cli)
php -m 2>/dev/null | grep -qi '^redis$' || need_apt+=(php-redis)
[ -f /usr/share/php/Illuminate/autoload.php ] || need_apt+=(php-laravel-framework)
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v haproxy >/dev/null || need_apt+=(haproxy)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v prometheus >/dev/null || need_apt+=(prometheus)
[ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
[ -x /usr/bin/supervisord ] || need_apt+=(supervisor)
[ -x /usr/bin/caddy ] || need_apt+=(caddy)
python3 -c 'import yaml' 2>/dev/null || need_apt+=(python3-yaml)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
  (cd tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
