/**
 * `npm run bench` works: a moment of every part of it (each row, the refresh storm, the memory
 * figure) runs to the end and prints its table. Asserts no figure: performance is read from the
 * benchmark itself, never from a timed test.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('runs every part of the benchmark and prints its table', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
    env: { ...process.env, BENCH_SMOKE: '1' },
    timeout: 110_000,
  });
  expect(stdout).toContain('| route | req/s | p50 ms | p99 ms | ratio to bare framework |');
  for (const row of [
    'bare Express 5',
    'bare Koa 3',
    'Koa: getToken, redis store, cold',
    'express-openid-connect',
    'express-session + passport',
  ])
    expect(stdout).toContain(`| ${row}`);
  expect(stdout).toMatch(/cookie store: \d+ token request/);
  expect(stdout).toMatch(/redis store: \d+ token request/);
  expect(stdout).toContain('distinct sessions on the memory store');
  expect(stdout).toMatch(/library's own work, without HTTP .* us per request warm/);
}, 120_000);
