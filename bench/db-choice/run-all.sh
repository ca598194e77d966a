#!/usr/bin/env bash
# Runs every db-choice measurement and appends one JSON line per run to $OUT (default
# bench/results/db-choice-raw.jsonl). Needs DBCHOICE_MODULES: a folder whose node_modules holds
# lmdb, classic-level and better-sqlite3 (see bench/results/embedded-db-choice.md for how it is made).
# Usage: DBCHOICE_MODULES=/work/scratch/dbchoice bash bench/db-choice/run-all.sh [publish|replay|sustain|crash|corrupt|diskfull]...
set -euo pipefail
: "${DBCHOICE_MODULES:?set DBCHOICE_MODULES to the scratch folder holding the candidates}"
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$here/../results/db-choice-raw.jsonl}
WORK=${WORK:-$(mktemp -d /tmp/dbchoice.XXXX)}
mkdir -p "$WORK"
ROUNDS=${ROUNDS:-3}
SUSTAIN_SECONDS=${SUSTAIN_SECONDS:-180}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(publish replay crash corrupt diskfull sustain)
# ONLY (an extended regex) limits a run to the invocations whose "script kind mode" matches it.
emit() {
  if [ -n "${ONLY:-}" ] && ! [[ "$(basename "$1") $2 ${3:-}" =~ $ONLY ]]; then return 0; fi
  node "$@" | tee -a "$OUT"
}

for step in "${steps[@]}"; do
  case $step in
  publish)
    # Interleaved rounds so that load from other users of the machine hits every store alike.
    for r in $(seq 1 "$ROUNDS"); do
      for c in 1 16 64; do
        n=$([ "$c" = 1 ] && echo 1000 || echo 5000)
        for km in fsfile:fsync lmdb:flushed lmdb:synccommit level:sync sqlite:full; do
          [ "$c" != 1 ] && [ "$km" = sqlite:full ] && continue # synchronous API: callers cannot overlap
          [ "$c" != 1 ] && [ "$km" = fsfile:fsync ] && km=fsfile:fsync-batched
          emit "$here/publish.mjs" "${km%%:*}" "${km#*:}" "$c" "$n" "$WORK/pub"
        done
        [ "$c" != 1 ] && emit "$here/publish.mjs" sqlite full-batched "$c" "$n" "$WORK/pub"
        emit "$here/publish.mjs" sqlite worker-full "$c" "$n" "$WORK/pub"
        for km in memory:memory lmdb:committed lmdb:nosync level:nosync sqlite:normal; do
          [ "$c" != 1 ] && [ "$km" = sqlite:normal ] && km=sqlite:normal-batched
          emit "$here/publish.mjs" "${km%%:*}" "${km#*:}" "$c" 20000 "$WORK/pub"
        done
      done
    done
    ;;
  syncs)
    # How many fsync-family calls each mode makes for 1,200 publishes (1,000 + 200 warm-up).
    for km in fsfile:fsync sqlite:full sqlite:full-batched sqlite:worker-full sqlite:normal lmdb:flushed lmdb:synccommit lmdb:committed lmdb:nosync level:sync level:nosync; do
      for c in 1 16; do
        strace -f -c -e trace=fsync,fdatasync,msync,sync_file_range,syncfs -o "$WORK/strace.txt" node "$here/publish.mjs" "${km%%:*}" "${km#*:}" "$c" 1000 "$WORK/st" >/dev/null
        calls=$(awk 'NR>2 && $NF!="total" && $4 ~ /^[0-9]+$/ {printf "%s\"%s\":%s", (n++?",":""), $NF, $4}' "$WORK/strace.txt")
        echo "{\"step\":\"syncs\",\"kind\":\"${km%%:*}\",\"mode\":\"${km#*:}\",\"concurrency\":$c,\"publishes\":1200,\"calls\":{$calls}}" | tee -a "$OUT"
      done
    done
    ;;
  slowdisk)
    # The same durable publishes with every fsync/fdatasync made 2 ms slower (LD_PRELOAD shim,
    # built into $WORK): which store keeps the event loop free while the disk flushes?
    gcc -shared -fPIC -O2 -o "$WORK/slow-fsync.so" "$here/slow-fsync.c" -ldl
    for r in $(seq 1 "$ROUNDS"); do
      for c in 1 16; do
        n=$([ "$c" = 1 ] && echo 500 || echo 3000)
        for km in fsfile:fsync lmdb:flushed level:sync sqlite:full sqlite:full-batched sqlite:worker-full; do
          [ "$c" = 1 ] && [ "$km" = sqlite:full-batched ] && continue
          [ "$c" != 1 ] && [ "$km" = sqlite:full ] && continue
          [ "$c" != 1 ] && [ "$km" = fsfile:fsync ] && km=fsfile:fsync-batched
          LD_PRELOAD="$WORK/slow-fsync.so" FSYNC_DELAY_US=2000 emit "$here/publish.mjs" "${km%%:*}" "${km#*:}" "$c" "$n" "$WORK/pub"
        done
      done
    done
    ;;
  replay)
    for r in $(seq 1 "$ROUNDS"); do
      for km in memory:memory lmdb:committed level:nosync sqlite:normal-batched; do
        emit "$here/replay.mjs" "${km%%:*}" "${km#*:}" "$WORK/replay" 30
      done
    done
    ;;
  crash)
    for km in lmdb:flushed lmdb:synccommit lmdb:committed level:sync level:nosync sqlite:full sqlite:normal sqlite:worker-full; do
      emit "$here/crash.mjs" "${km%%:*}" "${km#*:}" 25
    done
    ;;
  sqlitecheck)
    emit "$here/sqlite-check-cost.mjs" "$WORK/check" 200000
    ;;
  corrupt)
    for k in lmdb level sqlite; do emit "$here/corrupt.mjs" "$k"; done
    ;;
  diskfull)
    for km in lmdb:flushed level:sync sqlite:full sqlite:worker-full; do emit "$here/disk-full.mjs" "${km%%:*}" "${km#*:}" /mnt/dbchoice-full; done
    # lmdb by write API; an abort in its native code ends the process with 134 (recorded, not fatal here).
    for api in txn put putflushed; do
      [ -n "${ONLY:-}" ] && ! [[ "lmdb-disk-full-apis.mjs lmdb $api" =~ $ONLY ]] && continue
      mkdir -p /mnt/dbchoice-full && mount -t tmpfs -o size=2m tmpfs /mnt/dbchoice-full
      set +e
      line=$(node "$here/lmdb-disk-full-apis.mjs" "$api" /mnt/dbchoice-full 2>/dev/null | tail -1); rc=$?
      set -e
      umount /mnt/dbchoice-full
      [ -n "$line" ] && echo "$line" | tee -a "$OUT" || echo "{\"step\":\"lmdb-disk-full-api\",\"variant\":\"$api\",\"exitCode\":$rc}" | tee -a "$OUT"
    done
    ;;
  sustain)
    emit "$here/sustain.mjs" memory memory 60 "$WORK/sustain"
    for km in lmdb:flushed level:sync sqlite:full-batched sqlite:worker-full; do
      emit "$here/sustain.mjs" "${km%%:*}" "${km#*:}" "$SUSTAIN_SECONDS" "$WORK/sustain"
    done
    ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
