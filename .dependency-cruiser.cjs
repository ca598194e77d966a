// The layering of src/, as rules `npm test` checks (`npm run lint:boundaries`). An import that
// runs uphill fails the build. The layers, top to bottom:
//   entry points (main.ts, cli/, cluster-primary.ts)
//   composition root (server.ts, app.ts): the only place that picks a backend
//   http/                      routes and middleware
//   backends/sqlite, memory, redis   implementations of backends/backend.ts
//   auth/ bus/ streams/ presence/ webhooks/ metrics/ web/ fs/   the domain
//   topics/ sse/               leaves: pure, import nothing of ours but the error types
// errors.ts, error-codes.ts, config.ts (types) and lifecycle.ts are shared foundations.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes two modules one; cut it with an interface that the lower one owns.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'backend-chosen-once',
      severity: 'error',
      comment: 'Only the composition root (src/server.ts) picks a backend implementation; everyone else talks to backends/backend.ts.',
      from: { path: '^src/', pathNot: ['^src/server\\.ts$', '^src/backends/'] },
      to: { path: '^src/backends/(?!backend\\.ts$)' },
    },
    {
      name: 'backends-apart',
      severity: 'error',
      comment: 'One backend never reaches into another.',
      from: { path: '^src/backends/([^/]+)/' },
      to: { path: '^src/backends/([^/]+)/', pathNot: '^src/backends/$1/' },
    },
    {
      name: 'domain-stays-down',
      severity: 'error',
      comment: 'The domain never imports routes, the composition root, entry points or backends.',
      from: { path: '^src/(auth|bus|streams|presence|webhooks|metrics|web|fs|topics|sse)/' },
      to: { path: '^src/(http/|server\\.ts|app\\.ts|main\\.ts|cli/|cluster-primary\\.ts|backends/)' },
    },
    {
      name: 'http-stays-down',
      severity: 'error',
      comment: 'Routes and middleware are built by the composition root, never the other way round.',
      from: { path: '^src/http/' },
      to: { path: '^src/(server\\.ts|app\\.ts|main\\.ts|cli/|cluster-primary\\.ts)' },
    },
    {
      name: 'leaves-are-leaves',
      severity: 'error',
      comment: 'topics/ and sse/ are pure: they import nothing of ours but the error types.',
      from: { path: '^src/(topics|sse)/' },
      to: { path: '^src/', pathNot: ['^src/$1/', '^src/errors\\.ts$', '^src/error-codes\\.ts$'] },
    },
    {
      name: 'client-is-its-own-package',
      severity: 'error',
      comment: 'src/client ships to browsers as notify-server/client: it imports nothing of the server.',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/client/' },
    },
    {
      name: 'jose-in-one-place',
      severity: 'error',
      comment:
        'Token signing and verification live in three modules of src/auth/: token-service.ts (ours), external-token-verifier.ts and issuer-keys.ts (trusted issuers). Nothing else imports jose.',
      from: { path: '^src/', pathNot: '^src/auth/(token-service|external-token-verifier|issuer-keys)\\.ts$' },
      to: { path: 'node_modules/jose/' },
    },
    {
      name: 'redis-driver-in-its-backend',
      severity: 'error',
      comment: 'Only the Redis backend talks to Redis.',
      from: { path: '^src/', pathNot: '^src/backends/redis/' },
      to: { path: 'node_modules/ioredis/' },
    },
    {
      name: 'sqlite-driver-in-its-backend',
      severity: 'error',
      comment: 'Only the SQLite backend talks to SQLite.',
      from: { path: '^src/', pathNot: '^src/backends/sqlite/' },
      to: { path: 'node_modules/better-sqlite3/' },
    },
    {
      name: 'no-orphans',
      severity: 'error',
      comment: 'A module nothing imports is dead code (entry points and static assets excepted).',
      from: {
        orphan: true,
        path: '^src/',
        pathNot: [
          '^src/main\\.ts$',
          '^src/cli/main\\.ts$',
          '^src/client/index\\.ts$',
          '^src/client/browser\\.ts$',
          '^src/web/worker\\.ts$',
          '\\.d\\.ts$',
        ],
      },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
