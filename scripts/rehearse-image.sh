#!/usr/bin/env bash
# Rehearses the Dockerfile without a container runtime: its two stages in temporary directories,
# with the same files copied and the same steps run (scripts/image-steps.sh), then the image's
# command (`node dist/main.js`) with its environment (DATA_DIR in a "volume" directory, as an
# unprivileged user when run as root) until its HEALTHCHECK passes and SIGTERM stops it with exit
# code 0. Then the same for a production install of the built checkout: `npm ci --omit=dev` and
# `npm start`. What it cannot rehearse: the base image, `USER node` itself, and Docker's network.
#
#   bash scripts/rehearse-image.sh        (test/ship/image.test.ts runs it)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/notify-image-XXXXXX")
server_pid=''
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL -- "-$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf 'rehearse: %s\n' "$*"; }
fail() {
  printf 'rehearse: FAILED: %s\n' "$*" >&2
  [ -f "$work/server.log" ] && sed 's/^/  server: /' "$work/server.log" >&2
  exit 1
}

free_port() { node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

# Starts "$@" in its own process group (so npm and its child stop together), waits for the
# image's HEALTHCHECK to pass, then stops it with SIGTERM and expects one of the exit codes $2
# (0; npm itself reports a SIGTERM as 143, after the server's own clean exit).
serve_and_stop() {
  local dir=$1 codes=$2
  shift 2
  : >"$work/server.log"
  (cd "$dir" && exec setsid "$@" >>"$work/server.log" 2>&1) &
  server_pid=$!
  local deadline=$((SECONDS + 60))
  until (cd "$image" && PORT=$port sh scripts/image-steps.sh healthcheck); do
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited before it was healthy"
    [ $SECONDS -lt $deadline ] || fail "no healthy answer on port $port within 60 s"
    sleep 0.2
  done
  step "healthy on 127.0.0.1:$port"
  kill -TERM -- "-$server_pid"
  local code=0
  wait "$server_pid" || code=$?
  # npm can exit on the signal before its child, the server, has written its last (batched) log
  # lines: wait for the whole process group to be gone before reading the log.
  local group_deadline=$((SECONDS + 15))
  while kill -0 -- "-$server_pid" 2>/dev/null; do
    [ $SECONDS -lt $group_deadline ] || fail "the server's processes still run 15 s after SIGTERM"
    sleep 0.1
  done
  server_pid=''
  case " $codes " in *" $code "*) ;; *) fail "exit code $code after SIGTERM (expected $codes)" ;; esac
  grep -q '"msg":"shutting down"' "$work/server.log" || fail "no 'shutting down' in the log"
  if grep -q '"level":[56]0' "$work/server.log"; then fail "errors in the log"; fi
  step "stopped by SIGTERM (exit code $code)"
}

# --- build stage -----------------------------------------------------------------------------
src="$work/src"
mkdir -p "$src/scripts"
step "build stage: COPY package.json package-lock.json scripts/image-steps.sh; RUN deps"
cp "$repo/package.json" "$repo/package-lock.json" "$src/"
cp "$repo/scripts/image-steps.sh" "$src/scripts/"
(cd "$src" && sh scripts/image-steps.sh deps) >"$work/deps.log" 2>&1 || { cat "$work/deps.log" >&2; fail "deps"; }
step "build stage: COPY . . (the files git lists, as .dockerignore mirrors .gitignore); RUN build"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) | (cd "$repo" && tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$src"
(cd "$src" && sh scripts/image-steps.sh build) >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "build"; }
[ -f "$src/dist/main.js" ] && [ -f "$src/dist/client/index.d.ts" ] && [ -f "$src/dist/web/public/notify-client.js" ] || fail "dist/ is incomplete"

# --- runtime stage ---------------------------------------------------------------------------
image="$work/app"
mkdir -p "$image/scripts"
step "runtime stage: COPY package.json package-lock.json scripts/image-steps.sh; RUN runtime"
cp "$src/package.json" "$src/package-lock.json" "$image/"
cp "$src/scripts/image-steps.sh" "$image/scripts/"
(cd "$image" && sh scripts/image-steps.sh runtime) >"$work/runtime.log" 2>&1 || { cat "$work/runtime.log" >&2; fail "runtime"; }
[ ! -e "$image/node_modules/typescript" ] || fail "the runtime stage holds dev dependencies (typescript)"
step "runtime stage: COPY --from=build better-sqlite3's native module"
mkdir -p "$image/node_modules/better-sqlite3/build/Release"
cp "$src/node_modules/better-sqlite3/build/Release/better_sqlite3.node" "$image/node_modules/better-sqlite3/build/Release/"
step "runtime stage: COPY dist openapi.yaml; the /data volume"
cp -R "$src/dist" "$image/dist"
cp "$src/openapi.yaml" "$image/"
volume="$work/data"
mkdir -p "$volume"
run_as=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
  # USER node: here the unprivileged `nobody`, owning only the volume.
  chmod 0755 "$work"
  chown -R root:root "$image"
  chmod -R a+rX "$image"
  chown nobody "$volume"
  run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi

port=$(free_port)
step "CMD node dist/main.js (HOST=127.0.0.1 here: the image listens on 0.0.0.0 inside its own network)"
serve_and_stop "$image" 0 env -i PATH="$PATH" HOME=/nonexistent NODE_ENV=production HOST=127.0.0.1 PORT="$port" DATA_DIR="$volume" \
  "${run_as[@]}" node dist/main.js
[ -f "$volume/signing-key-ed25519.pem" ] || fail "the signing key is not in the volume"
[ -f "$volume/notify.db" ] || fail "the store is not in the volume"
if [ "${#run_as[@]}" -gt 0 ]; then
  [ "$(stat -c %U "$volume/signing-key-ed25519.pem")" = nobody ] || fail "the signing key is not owned by the unprivileged user"
  [ "$(stat -c %U "$volume/notify.db")" = nobody ] || fail "the store is not owned by the unprivileged user"
  step "ran as nobody; its state is in the volume"
fi

# --- a production install of the built checkout ----------------------------------------------
step "checkout: npm ci --omit=dev, then npm start (dist/ is current: nothing is rebuilt)"
(cd "$src" && npm ci --omit=dev --no-audit --no-fund) >"$work/omit-dev.log" 2>&1 || { cat "$work/omit-dev.log" >&2; fail "npm ci --omit=dev"; }
[ ! -e "$src/node_modules/typescript" ] || fail "npm ci --omit=dev installed typescript"
port=$(free_port)
serve_and_stop "$src" '0 143' env HOST=127.0.0.1 PORT="$port" DATA_DIR="$work/checkout-data" npm start
if grep -q 'build: dist/ built' "$work/server.log"; then fail "npm start rebuilt dist/"; fi

step "OK"
