#!/bin/sh
# The steps of the container image, in one place: the Dockerfile runs them, and so does
# scripts/rehearse-image.sh (run by test/ship/image.test.ts) in temporary directories, since a
# container runtime is not available everywhere the tests run.
#
#   image-steps.sh deps         build stage: every dependency, from the lock file; the native module compiled
#   image-steps.sh build        build stage: dist/ (server, CLI, client types, browser bundles)
#   image-steps.sh runtime      runtime stage: production dependencies only (the native module is copied in)
#   image-steps.sh healthcheck  HEALTHCHECK: GET /healthz on this host's $PORT (https with TLS_CERT_FILE)
set -eu

# better-sqlite3 (the default store) is the one dependency with native code. Its install script
# compiles SQLite from the registry tarball with node-gyp: a C/C++ toolchain (installed here when
# missing, as in the slim base image) and Node's own headers, taken from this node's prefix so
# node-gyp downloads nothing. build-from-source: no prebuilt binary is fetched from GitHub
# (npm_config_build_from_source=false with npm_config_better_sqlite3_local_prebuilds=DIR uses a
# prebuilt one from DIR instead; the tests do, to compile once per checkout, not per install).
native() {
  if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
    apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
  fi
  prefix=$(node -p 'require("node:path").resolve(process.execPath, "../..")')
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$prefix/include/node/node.h" ]; then
    npm_config_nodedir=$prefix
    export npm_config_nodedir
  fi
  npm_config_build_from_source=${npm_config_build_from_source:-true} npm rebuild better-sqlite3
}

case "${1:-}" in
  deps)
    # --ignore-scripts: the sources are not copied yet (prepare would find nothing to build), and
    # no other dependency needs its install script (esbuild and tsx ship their binaries as packages).
    npm ci --no-audit --no-fund --ignore-scripts
    native
    ;;
  build)
    node scripts/build.mjs
    ;;
  runtime)
    # No compiler in this stage: the Dockerfile copies better-sqlite3's compiled module from the
    # build stage (same base image, same Node), next to this install.
    npm ci --omit=dev --no-audit --no-fund --ignore-scripts
    ;;
  healthcheck)
    exec node -e '
      const tls = Boolean(process.env.TLS_CERT_FILE);
      const client = require(tls ? "node:https" : "node:http");
      // Loopback only, and the certificate is for the public name: it is not checked here.
      const req = client.get({ host: "127.0.0.1", port: Number(process.env.PORT || 3000), path: "/healthz", timeout: 2500, rejectUnauthorized: false },
        (res) => process.exit(res.statusCode === 200 ? 0 : 1));
      req.on("timeout", () => req.destroy());
      req.on("error", () => process.exit(1));
    '
    ;;
  *)
    echo "usage: $0 deps|build|runtime|healthcheck" >&2
    exit 2
    ;;
esac
