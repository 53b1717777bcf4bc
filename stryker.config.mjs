// Mutation testing (`npm run mutate`): small realistic bugs put into src/ one at a
// time; a mutant that no test kills is a behaviour no test pins. Incremental: a rerun after a
// small change tests only the mutants it touched. See README, Development.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';

const notMutated = JSON.parse(readFileSync(new URL('scripts/not-mutated.json', import.meta.url), 'utf8'));

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  // Type-only and re-export files have nothing to mutate; everything else is mutated.
  mutate: ['src/**/*.ts', ...notMutated.sources.map((path) => `!${path}`)],
  coverageAnalysis: 'perTest',
  // Mutants in module-level constants would need a fresh process per mutant: skipped.
  ignoreStatic: true,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['json', 'html', 'progress', 'clear-text'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  // Four: most of a mutant's test time is spent waiting (provider timeouts, cooldowns, Redis), not on CPU.
  concurrency: 4,
  // The initial run is the whole in-process suite in one vitest process, with per-test coverage.
  dryRunTimeoutMinutes: 30,
  timeoutMS: 20_000,
  thresholds: { high: 90, low: 85, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
