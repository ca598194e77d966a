# syntax=docker/dockerfile:1
# notify, as a container image: `docker build -t notify-server .`, then
#   docker run -p 127.0.0.1:3000:3000 -v notify-data:/data notify-server
# The build stage compiles dist/ with the dev dependencies; the runtime stage holds only the
# production dependencies (with better-sqlite3's native module, compiled in the build stage), dist/
# and openapi.yaml, runs as the unprivileged `node` user, and keeps its state (user file, signing
# key, the store notify.db) in the /data volume. Every RUN is a step of
# scripts/image-steps.sh, which scripts/rehearse-image.sh runs without a container runtime.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/image-steps.sh scripts/
RUN sh scripts/image-steps.sh deps
COPY . .
RUN sh scripts/image-steps.sh build

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/scripts/image-steps.sh scripts/
RUN sh scripts/image-steps.sh runtime && npm cache clean --force
COPY --from=build /src/node_modules/better-sqlite3/build/Release/better_sqlite3.node ./node_modules/better-sqlite3/build/Release/
COPY --from=build /src/dist ./dist
COPY --from=build /src/openapi.yaml ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["sh", "scripts/image-steps.sh", "healthcheck"]
# SIGTERM: streams get `closed` (shutdown) at once; give SHUTDOWN_GRACE (10 s) with `docker stop -t 20`.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
