/**
 * The package as its users get it. This checkout is packed (`npm pack`, whose `prepack` builds it),
 * the tarball is installed into fresh folders outside the project, with its own dependencies only,
 * and a user's app (test/package/app.ts) is type-checked and run through a real login, a refresh
 * and an API call against the bundled emulators, in three consumer setups:
 *
 * - ESM TypeScript with `moduleResolution: nodenext`, on Express 5 and Koa 3;
 * - ESM TypeScript with `moduleResolution: bundler`, bundled by esbuild, on Express 5 and Koa 3;
 * - CommonJS: TypeScript compiled to `require()` (Node's require of ES modules), on Express 4 and
 *   Koa 2 with their own typings (@types/express 4, @types/koa 2).
 *
 * The installs use the npm registry (through npm's cache when it can), as a user's would.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const APP = join(ROOT, 'test/package/app.ts');

/** What each install folder adds next to the tarball: the frameworks and typings a user has. */
const INSTALLS = {
  current: ['express@^5', 'koa@^3', '@types/express@^5', '@types/koa@^3', '@types/node@~20.19'],
  legacy: ['express@^4.21', 'koa@^2.15', '@types/express@^4.17', '@types/koa@^2.15', '@types/node@~20.19'],
} as const;

interface Setup {
  name: string;
  install: keyof typeof INSTALLS;
  type: 'module' | 'commonjs';
  compilerOptions: Record<string, unknown>;
  /** Builds the type-checked app into something node runs; returns its path. */
  compile(dir: string): Promise<string>;
}

const strict = { target: 'es2022', strict: true, skipLibCheck: true, types: ['node'] };

const SETUPS: Setup[] = [
  {
    name: 'ESM, moduleResolution nodenext',
    install: 'current',
    type: 'module',
    compilerOptions: { ...strict, module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' },
    compile: async (dir) => (await tsc(dir), join(dir, 'out/app.js')),
  },
  {
    name: 'ESM, moduleResolution bundler (esbuild)',
    install: 'current',
    type: 'module',
    compilerOptions: { ...strict, module: 'preserve', moduleResolution: 'bundler', noEmit: true },
    async compile(dir) {
      await tsc(dir);
      // The package and its dependencies are bundled; the frameworks stay external, as they are
      // in most server bundles (their CommonJS needs Node's own require).
      await build({
        absWorkingDir: dir,
        entryPoints: ['app.ts'],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile: 'out/app.mjs',
        external: ['express', 'koa'],
        logLevel: 'error',
      });
      return join(dir, 'out/app.mjs');
    },
  },
  {
    name: 'CommonJS require(), Express 4 and Koa 2',
    install: 'legacy',
    type: 'commonjs',
    compilerOptions: { ...strict, module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' },
    async compile(dir) {
      await tsc(dir);
      const compiled = await readFile(join(dir, 'out/app.js'), 'utf8');
      expect(compiled).toContain('require("oauth-middleware/express")');
      return join(dir, 'out/app.js');
    },
  },
];

async function tsc(dir: string, ...flags: string[]) {
  await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json'), ...flags], { timeout: 60_000 });
}

/** npm, without the settings of the `npm test` that runs this file. */
function npm(args: string[], cwd: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_(package|lifecycle)_/.test(key)));
  return run('npm', args, { cwd, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
}

let work: string;
let tarball: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'oauth-middleware-package-'));
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  await npm(['pack', '--pack-destination', work], ROOT);
  tarball = join(work, `oauth-middleware-${version}.tgz`);
  await Promise.all(
    Object.entries(INSTALLS).map(async ([name, others]) => {
      const dir = join(work, name);
      await mkdir(dir);
      await writeFile(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true }));
      await npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...others], dir);
    }),
  );
}, 240_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the built entry points, their declarations and the LICENSE, and no sources, maps or tests', async () => {
    const { stdout } = await run('tar', ['tzf', tarball]);
    const files = stdout.trim().split('\n');
    const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types: string; default: string }>;
    };
    for (const target of Object.values(manifest.exports)) {
      for (const path of typeof target === 'string' ? [target] : [target.types, target.default]) {
        expect(files).toContain(`package/${path.replace(/^\.\//, '')}`);
      }
    }
    expect(files).toEqual(expect.arrayContaining(['package/LICENSE', 'package/README.md', 'package/package.json']));
    const unexpected = files.filter((f) => /\.map$|\.test\.|(?<!\.d)\.ts$|\/support\/|\/examples\//.test(f));
    expect(unexpected).toEqual([]);
    // Entry points at the top of dist/, named as they are imported: no path shows the repository's layout.
    expect(files.filter((f) => /^package\/dist\/(src|adapters|test|emulators)\//.test(f))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['package/dist/express.js', 'package/dist/koa.js', 'package/dist/adapter.js']));
  });

  it('installs its run-time dependencies and none of the development ones', () => {
    const modules = join(work, 'current/node_modules');
    for (const needed of ['openid-client', 'lru-cache', 'cookie']) expect(existsSync(join(modules, needed))).toBe(true);
    for (const devOnly of ['iron-session', 'oidc-provider', 'vitest', 'typescript', 'tsx', 'supertest', 'ioredis', 'esbuild']) {
      expect(existsSync(join(modules, devOnly)), devOnly).toBe(false);
    }
  });

  it('has declarations that type-check on their own (skipLibCheck off)', async () => {
    const dir = await consumer(SETUPS[0]!, 'declarations');
    // Other packages' declarations may have problems of their own (@types/koa 3 has one); the app
    // and this package's declarations must have none.
    const failure = await tsc(dir, '--noEmit', '--skipLibCheck', 'false').catch((err: { stdout?: string }) => err);
    const errors = String(failure?.stdout ?? '')
      .split('\n')
      .filter((line) => /error TS\d+/.test(line));
    const ours = errors.filter((line) => !line.includes('/node_modules/') || line.includes('/node_modules/oauth-middleware/'));
    expect(ours).toEqual([]);
  }, 60_000);

  describe.each(SETUPS)('$name', (setup) => {
    it('type-checks req.oauth and ctx.oauth, and signs in, refreshes and calls the API on Express and Koa', async () => {
      const dir = await consumer(setup, setup.name.replace(/\W+/g, '-'));
      const entry = await setup.compile(dir);
      const { stdout } = await run(process.execPath, [entry], { cwd: dir, timeout: 30_000 });
      const result = JSON.parse(stdout) as Record<string, unknown>;
      for (const framework of ['express', 'koa']) {
        expect(result[framework], framework).toEqual({
          anonymous: {
            status: 401,
            body: { error: 'not_connected', provider: 'pipedrive', login: '/auth/pipedrive/login?returnTo=%2Fme' },
          },
          callback: { status: 302, location: '/me' },
          me: {
            status: 200,
            body: { expiresAt: expect.any(Number), api: 200, user: expect.objectContaining({ id: 1 }) },
          },
          counts: { authorize: 1, token: 1, refresh: 1, revoke: 0, api: 1 },
          rejections: [],
        });
      }
      expect(result.errorStatus).toBe(401);
    }, 90_000);
  });
});

/** A folder beside an install's node_modules holding the app and this setup's package.json and tsconfig. */
async function consumer(setup: Setup, name: string): Promise<string> {
  const dir = join(work, setup.install, name);
  await mkdir(dir, { recursive: true });
  await cp(APP, join(dir, 'app.ts'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: setup.type }));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: setup.compilerOptions, include: ['app.ts'] }));
  return dir;
}
