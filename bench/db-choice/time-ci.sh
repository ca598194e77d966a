#!/usr/bin/env bash
# Cold-cache `npm ci` timing, interleaved rounds. Each DIR (under $DBCHOICE_MODULES) holds a
# package.json + package-lock.json. Each run: node_modules removed, an empty --cache directory, then
# `npm ci`; then smoke.mjs checks that the candidate installed there opens a database and writes
# (proves the native binding is usable). Appends "dir round exit seconds load smoke" lines to
# $DBCHOICE_MODULES/ci-times.tsv.
# Usage: DBCHOICE_MODULES=/work/scratch/dbchoice bash bench/db-choice/time-ci.sh ROUNDS DIR...
set -u
: "${DBCHOICE_MODULES:?set DBCHOICE_MODULES to the scratch folder}"
here=$(cd "$(dirname "$0")" && pwd)
rounds=$1; shift
out=$DBCHOICE_MODULES/ci-times.tsv
for r in $(seq 1 "$rounds"); do
  for d in "$@"; do
    cd "$DBCHOICE_MODULES/$d" || exit 1
    rm -rf node_modules; cache=$(mktemp -d /tmp/npmcache.XXXX)
    load=$(cut -d' ' -f1 /proc/loadavg)
    s=$(date +%s.%N)
    npm ci --no-audit --no-fund --cache "$cache" >"/tmp/ci-$d-$r.log" 2>&1; rc=$?
    e=$(date +%s.%N)
    smoke=$(node "$here/smoke.mjs" 2>&1 | tail -1)
    printf '%s\t%s\t%d\t%.1f\t%s\t%s\n' "$d" "$r" "$rc" "$(echo "$e - $s" | bc)" "$load" "$smoke" | tee -a "$out"
    rm -rf "$cache"
  done
done
