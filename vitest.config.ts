import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // oidc-provider prints an "unsupported runtime" notice on Node 20; everything else stays visible.
    onConsoleLog: (log) => !log.includes('oidc-provider WARNING'),
  },
});
