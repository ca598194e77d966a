#!/bin/sh
# The steps of the container image, in one place: the Dockerfile runs them, and so does
# scripts/rehearse-image.sh (run by test/ship/image.test.ts) in temporary directories, since a
# container runtime is not available everywhere the tests run.
#
#   image-steps.sh deps         build stage: every dependency, from the lock file
#   image-steps.sh build        build stage: dist/ (server, CLI, client types, browser bundles)
#   image-steps.sh runtime      runtime stage: production dependencies only
#   image-steps.sh healthcheck  HEALTHCHECK: GET /healthz on this host's $PORT (https with TLS_CERT_FILE)
set -eu
case "${1:-}" in
  deps)
    # --ignore-scripts: the sources are not copied yet (prepare would find nothing to build), and
    # no dependency needs its install script (esbuild and tsx ship their binaries as packages).
    npm ci --no-audit --no-fund --ignore-scripts
    ;;
  build)
    node scripts/build.mjs
    ;;
  runtime)
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
