import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const local = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  // The examples import the package by name, as users do; tests run them on the sources (as tsconfig's
  // `paths` and tsx do for `npm start`), never on whatever an earlier build left in dist/.
  resolve: {
    alias: [
      { find: /^oauth-middleware$/, replacement: local('./src/index.ts') },
      { find: /^oauth-middleware\/express$/, replacement: local('./src/express.ts') },
      { find: /^oauth-middleware\/koa$/, replacement: local('./src/koa.ts') },
      { find: /^oauth-middleware\/fastify$/, replacement: local('./src/fastify.ts') },
      { find: /^oauth-middleware\/fetch$/, replacement: local('./src/fetch.ts') },
      { find: /^oauth-middleware\/adapter$/, replacement: local('./src/adapter.ts') },
      { find: /^oauth-middleware\/providers$/, replacement: local('./src/providers/index.ts') },
      { find: /^oauth-middleware\/redis$/, replacement: local('./src/redis.ts') },
      { find: /^oauth-middleware\/testing$/, replacement: local('./emulators/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'emulators/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // oidc-provider prints an "unsupported runtime" notice on Node 20; everything else stays visible.
    onConsoleLog: (log) => !log.includes('oidc-provider WARNING'),
  },
});
