/**
 * `npm run bench`: what this library costs a request, next to the bare frameworks and to its peers,
 * every figure from one run. The apps run in a child process (bench/server.ts), the load comes from
 * this one (autocannon, 10 connections, loopback). Rounds alternate: each round measures every row
 * once, and a row reports its median round, so a drift of the machine's speed reaches every row alike.
 *
 * Rows: bare Express 5 and bare Koa 3; Express with one empty middleware (the floor of any
 * middleware); Express with an async guard before an async route, no library (the floor of a route
 * that awaits, as `requireToken` + `getToken` do); a route that never reads `req.oauth`; `requireToken` +
 * `getToken` warm (one session, opened once) and cold (every request carries a session the process
 * has not opened: more distinct ones than any cache holds, in turn) on the cookie, memory and Redis
 * stores, on Express and on Koa; express-openid-connect and express-session + passport on an
 * equivalent logged-in route. Then a refresh storm (concurrent requests on one expired token, the
 * provider answering after 50 ms, on connections opened before: the token requests it saw, and p99,
 * next to the p99 of the same burst on a route that reads nothing), and the resident memory of
 * the server after serving 100,000 distinct sessions (memory store).
 *
 * Writes the table to bench/results.md. `BENCH_SMOKE=1` runs every part for a moment, to prove the
 * harness works (the test suite does), and writes nothing. Environment: BENCH_SECONDS (per row and
 * round, default 5), BENCH_ROUNDS (default 3), BENCH_SESSIONS (memory, default 100000), REDIS_URL
 * (as for the tests); BENCH_ONLY (a regular expression: only the rows it matches, besides the bare
 * frameworks, the storm and the memory figure only when it matches `storm` or `memory`, and no
 * results.md) and BENCH_PROFILE (a folder: the server writes there a CPU profile of the measured
 * rounds, to open in Chrome's DevTools). The library measured is tsc's output, built first into
 * bench/.lib (BENCH_LIB=../src measures the sources through tsx instead).
 */
import { execFileSync, fork } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { availableParallelism, cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { completeLogin } from '../test/support/authorization-server.js';
import { coreCost } from './core.js';

const SMOKE = process.env.BENCH_SMOKE === '1';
const SECONDS = SMOKE ? 0.3 : Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 10;
// More than the unseal cache holds (5,000), so that in turn none is still cached when it comes back.
const COLD_SESSIONS = SMOKE ? 20 : 8000;
const STORM = SMOKE ? 20 : 200;
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const MEMORY_SESSIONS = SMOKE ? 200 : Number(process.env.BENCH_SESSIONS ?? 100_000);

interface Row {
  name: string;
  url: string;
  /** The bare framework this row is compared with. */
  baseline: 'express' | 'koa';
  /** One cookie header for every request, or one per request in turn. */
  cookies?: string[];
}

interface Measure {
  rps: number;
  p50: number;
  p99: number;
}

type Message =
  | { type: 'ready'; urls: Record<string, string> }
  | { type: 'memory'; rss: number }
  | { type: 'tokenRequests'; count: number }
  | { type: 'profile' }
  | { type: 'profiled' };

// The server side, and a way to ask it a question over IPC.
// The library as its users run it: tsc's output (as `npm run build` makes it), in a folder of the
// bench's own so that a build or pack running beside it does not pull it away.
execFileSync(
  process.execPath,
  [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', 'bench/.lib'],
  {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: 'inherit',
  },
);
const child = fork(new URL('./server.ts', import.meta.url), {
  env: { BENCH_LIB: './.lib', ...process.env },
  execArgv: ['--import', 'tsx', '--expose-gc'],
  stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
});
// oidc-provider's development warnings (the demo provider, for express-openid-connect) are noise here.
child.stderr?.on('data', (chunk: Buffer) => {
  const lines = chunk
    .toString()
    .split('\n')
    .filter((line) => line !== '' && !line.includes('oidc-provider WARNING'));
  if (lines.length > 0) console.error(lines.join('\n'));
});
function ask<T extends Message['type']>(type: T, question: object | string = type): Promise<Extract<Message, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench server: no ${type} answer`)), 60_000);
    const listen = (message: Message) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off('message', listen);
      resolve(message as Extract<Message, { type: T }>);
    };
    child.on('message', listen);
    if (question !== 'ready') child.send(typeof question === 'string' ? { type: question } : question);
  });
}
child.on('exit', (code) => {
  if (code) {
    console.error(`bench server exited with ${code}`);
    process.exit(1);
  }
});
const { urls } = await ask('ready', 'ready');
const url = (name: string) => urls[name] as string;

/** The cookie header a response's Set-Cookie lines make. */
function cookieOf(response: Response): string {
  return response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .join('; ');
}

/** Signs in `count` sessions through the app's `/bench/login` (imported tokens), ten at a time. */
async function sessions(base: string, count: number, query = ''): Promise<string[]> {
  const made: string[] = [];
  const next = async (): Promise<void> => {
    while (made.length < count) {
      const response = await fetch(`${base}/bench/login${query}`);
      if (!response.ok) throw new Error(`${base}/bench/login: ${response.status}`);
      made.push(cookieOf(response));
    }
  };
  await Promise.all(Array.from({ length: 10 }, next));
  return made.slice(0, count);
}

/** Signs in to express-openid-connect through the demo provider, as a browser would. */
async function eocSession(base: string): Promise<string> {
  const login = await fetch(`${base}/login`, { redirect: 'manual' });
  const callback = await completeLogin(login.headers.get('location') as string);
  const landed = await fetch(callback, { redirect: 'manual', headers: { cookie: cookieOf(login) } });
  if (landed.status !== 302) throw new Error(`express-openid-connect callback: ${landed.status}`);
  return cookieOf(landed);
}

async function measure(row: Row, seconds: number): Promise<Measure> {
  const cookies = row.cookies ?? [];
  let turn = 0;
  const result = await autocannon({
    url: `${row.url}/${row.cookies ? 'token' : 'plain'}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        setupRequest: (request) => {
          const cookie = cookies[turn++ % Math.max(cookies.length, 1)];
          return cookie ? { ...request, headers: { ...request.headers, cookie } } : request;
        },
      },
    ],
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${row.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
}

// The rows; the sessions they need are made (once per store) before any measuring.
const signedIn = new Map<string, Promise<string[]>>();
/** `count` sessions signed in on `app`, the same ones for every row that asks the same. */
const sessionsOf = (app: string, count: number) => () => {
  if (!signedIn.has(app)) signedIn.set(app, sessions(url(app), count));
  return signedIn.get(app) as Promise<string[]>;
};
const one = (cookies: () => Promise<string[]>) => async () => (await cookies()).slice(0, 1);
const planned: Array<Omit<Row, 'cookies'> & { cookies?: () => Promise<string[]> }> = [
  { name: 'bare Express 5', url: url('express'), baseline: 'express' },
  { name: 'bare Koa 3', url: url('koa'), baseline: 'koa' },
];
planned.push({
  name: 'Express: an empty middleware (any middleware costs this)',
  url: url('express-empty'),
  baseline: 'express',
});
planned.push({
  name: 'Express: an async guard and an async route, no library (what awaiting costs)',
  url: url('express-async'),
  baseline: 'express',
});
for (const framework of ['express', 'koa'] as const) {
  const label = framework === 'express' ? 'Express' : 'Koa';
  planned.push({ name: `${label}: untouched route`, url: url(`${framework}-cookie`), baseline: framework });
  for (const store of ['cookie', 'memory', 'redis']) {
    // Express and Koa share each store's OAuth instance: sessions are signed in once, on Express.
    const cold = sessionsOf(`express-${store}`, COLD_SESSIONS);
    const base = url(`${framework}-${store}`);
    planned.push({ name: `${label}: getToken, ${store} store, warm`, url: base, baseline: framework, cookies: one(cold) });
    planned.push({ name: `${label}: getToken, ${store} store, cold`, url: base, baseline: framework, cookies: cold });
  }
}
planned.push({
  name: 'express-openid-connect, logged-in route',
  url: url('express-openid-connect'),
  baseline: 'express',
  cookies: async () => [await eocSession(url('express-openid-connect'))],
});
planned.push({
  name: 'express-session + passport, logged-in route',
  url: url('passport'),
  baseline: 'express',
  cookies: sessionsOf('passport', 1),
});
const rows: Row[] = [];
for (const [index, { cookies, ...row }] of planned.entries()) {
  if (index >= 2 && ONLY && !ONLY.test(row.name)) continue;
  rows.push({ ...row, ...(cookies ? { cookies: await cookies() } : {}) });
}

// Warm-up (JIT, connections), then the rounds.
if (!SMOKE) for (const row of rows) await measure(row, 1);
const rounds = new Map<Row, Measure[]>(rows.map((row) => [row, []]));
const profile = process.env.BENCH_PROFILE && join(process.env.BENCH_PROFILE, `bench-${Date.now()}.cpuprofile`);
if (profile) await ask('profile', { type: 'profile', file: profile });
for (let round = 0; round < ROUNDS; round++) {
  for (const row of rows) rounds.get(row)?.push(await measure(row, SECONDS));
}
if (profile) {
  await ask('profiled', { type: 'profiled', file: profile });
  console.log(`CPU profile of the rounds: ${profile}`);
}
const median = (row: Row): Measure => {
  const sorted = [...(rounds.get(row) ?? [])].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor(sorted.length / 2)] as Measure;
};
const bare = { express: median(rows[0] as Row).rps, koa: median(rows[1] as Row).rps };

/** STORM requests at once, each on a connection of its own, open already: their latencies, sorted. */
async function burst(agent: Agent, base: string, path: string, cookie?: string): Promise<number[]> {
  const { hostname, port } = new URL(base);
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const start = performance.now();
      const req = httpRequest({ hostname, port, path, agent, headers: cookie ? { cookie } : {} }, (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve(performance.now() - start) : reject(new Error(`burst ${path}: ${res.statusCode}`)),
        );
      });
      req.on('error', reject);
      req.end();
    });
  return (await Promise.all(Array.from({ length: STORM }, once))).sort((a, b) => a - b);
}
const p99 = (sorted: number[]) => sorted[Math.ceil(sorted.length * 0.99) - 1] as number;

/**
 * STORM requests at once on one session whose access token expired: the refreshes the provider
 * saw, and p99; `floor` is the p99 of the same burst on the route that reads nothing, what the
 * connections alone cost.
 */
async function storm(store: string): Promise<{ tokenRequests: number; p99: number; min: number; max: number; floor: number }> {
  const base = url(`express-${store}`);
  // The connections are opened first (a browser's would be): the storm measures the refresh, not TCP.
  const agent = new Agent({ keepAlive: true, maxSockets: STORM });
  await burst(agent, base, '/plain');
  const floor = p99(await burst(agent, base, '/plain'));
  const [cookie] = await sessions(base, 1, '?expired');
  const before = (await ask('tokenRequests')).count;
  const latencies = await burst(agent, base, '/token', cookie);
  const tokenRequests = (await ask('tokenRequests')).count - before;
  agent.destroy();
  return { tokenRequests, p99: p99(latencies), min: latencies[0] as number, max: latencies.at(-1) as number, floor };
}
async function storms(): Promise<Record<string, Awaited<ReturnType<typeof storm>>>> {
  const stormProfile = profile && profile.replace(/\.cpuprofile$/, '-storm.cpuprofile');
  if (stormProfile) await ask('profile', { type: 'profile', file: stormProfile });
  const measured = { cookie: await storm('cookie'), redis: await storm('redis') };
  if (stormProfile) {
    await ask('profiled', { type: 'profiled', file: stormProfile });
    console.log(`CPU profile of the storms: ${stormProfile}`);
  }
  return measured;
}
const stormed = !ONLY || ONLY.test('storm') ? await storms() : undefined;

/** The server's resident set before and after serving that many distinct sessions (each request signs one in). */
async function memory(): Promise<{ before: number; after: number }> {
  const before = (await ask('memory')).rss;
  const served = await autocannon({
    url: `${url('express-memory')}/bench/login`,
    connections: CONNECTIONS,
    amount: MEMORY_SESSIONS,
  });
  if (served.non2xx > 0 || served.errors > 0) throw new Error(`memory: ${served.non2xx} non-2xx, ${served.errors} errors`);
  return { before, after: (await ask('memory')).rss };
}
const resident = !ONLY || ONLY.test('memory') ? await memory() : undefined;

await new Promise<void>((resolve) => {
  child.once('exit', () => resolve());
  child.send({ type: 'close' });
});

// The library's own work per request, without HTTP (in this process: the server's is gone).
const core =
  !ONLY || ONLY.test('core') ? await coreCost(process.env.BENCH_LIB ?? './.lib', SMOKE ? 200 : 20_000, COLD_SESSIONS) : undefined;

// The table.
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const lines = [
  `${new Date().toISOString().slice(0, 10)}, Node ${process.versions.node}, ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown'}); ` +
    `${CONNECTIONS} connections on loopback, ${ROUNDS} alternating rounds of ${SECONDS} s per row, the median round shown.`,
  '',
  '| route | req/s | p50 ms | p99 ms | ratio to bare framework |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...rows.map((row) => {
    const { rps, p50, p99 } = median(row);
    return `| ${row.name} | ${rps.toFixed(0)} | ${p50} | ${p99} | ${(rps / bare[row.baseline]).toFixed(2)} |`;
  }),
  ...(stormed
    ? [
        '',
        `Refresh storm: ${STORM} concurrent requests (on ${STORM} open connections) on one expired token, the provider answering after 50 ms:`,
        ...Object.entries(stormed).map(
          ([store, s]) =>
            `- ${store} store: ${s.tokenRequests} token request(s) at the provider; fastest ${s.min.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, slowest ${s.max.toFixed(0)} ms ` +
            `(the same burst on the route that reads nothing: p99 ${s.floor.toFixed(0)} ms).`,
        ),
      ]
    : []),
  ...(core
    ? [
        '',
        `The library's own work, without HTTP (guard + getToken on the cookie store, called in a loop): ` +
          `${core.warm.toFixed(1)} us per request warm, ${core.cold.toFixed(1)} us cold.`,
      ]
    : []),
  ...(resident
    ? [
        '',
        `Memory: the server's resident set ${mib(resident.before)} before and ${mib(resident.after)} after serving ` +
          `${MEMORY_SESSIONS.toLocaleString('en')} distinct sessions on the memory store (after a garbage collection).`,
      ]
    : []),
];
const table = lines.join('\n');
console.log(`\n${table}`);
if (!SMOKE && !ONLY) {
  writeFileSync(
    new URL('./results.md', import.meta.url),
    `# Benchmark results\n\nWritten by \`npm run bench\` (bench/run.ts); see README, Performance.\n\n${table}\n`,
  );
}
