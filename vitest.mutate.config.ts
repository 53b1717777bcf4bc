/**
 * The suite as StrykerJS runs it against each mutant: the tests that exercise this process's code.
 * Left out, each for a reason: tests whose code under test runs in other processes (the starters,
 * the packed package, the multi-instance workers, the benchmark's smoke), where a mutant switched on in this process is
 * not active; and the bulk runs (fuzzing, the rotation soak), whose properties the named tests
 * pin case by case and which would cost a minute per mutant.
 */
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      // The newest majors only (the adapters' code is the same on Express 4 and Koa 2, which CI runs),
      // and the web-standard handler, not Hono over it (examples/hono is not mutated).
      env: { OAUTH_TEST_ADAPTERS: 'express,koa,fastify,fetch' },
      exclude: [
        'test/examples.test.ts',
        'test/package.test.ts',
        'test/multi-instance.test.ts',
        'test/fuzz.test.ts',
        'test/soak.test.ts',
        'test/bench-smoke.test.ts',
        '**/node_modules/**',
      ],
    },
  }),
);
