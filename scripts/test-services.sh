#!/usr/bin/env bash
# Runs before `npm test`: the suite tests against real parts, so it needs Debian's chromium and
# redis-server (`.ci/run` installs both), and a Redis answering at TEST_REDIS_URL. Starts one on
# loopback when none answers; tests that restart Redis start their own on other ports.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "npm test needs Debian packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}    (or run: bash .ci/run)" >&2
  exit 1
fi
url="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
if ! redis-cli -u "$url" ping >/dev/null 2>&1; then
  port=$(node -e 'console.log(new URL(process.argv[1]).port || 6379)' "$url")
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no >/dev/null
  for _ in $(seq 1 50); do redis-cli -u "$url" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -u "$url" ping >/dev/null 2>&1 || { echo "could not start redis-server at $url" >&2; exit 1; }
fi
