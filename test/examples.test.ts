/** The starters people copy must work as they are: sign in, see claims and userinfo, sign out. */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { main as expressExample } from '../examples/express-basic/server.js';
import { main as redisExample } from '../examples/express-redis/server.js';
import { main as fastifyExample } from '../examples/fastify/server.js';
import { main as honoExample } from '../examples/hono/server.js';
import { main as koaExample } from '../examples/koa-basic/server.js';
import { completeLogin } from './support/authorization-server.js';
import { uniquePrefix } from './support/redis.js';

describe.each([
  ['express-basic', expressExample],
  ['koa-basic', koaExample],
  ['fastify', fastifyExample],
  ['hono', honoExample],
])('examples/%s', (_name, main) => {
  it('signs in with the demo provider, shows claims and userinfo, and signs out', async () => {
    const example = await main({ port: 0, idpPort: 0 });
    try {
      const agent = request.agent(example.url);
      await agent.get('/').expect(200, /Sign in with the demo provider/);
      const guarded = await agent.get('/profile').set('accept', 'text/html').expect(302);
      const login = await agent.get(guarded.headers.location as string).expect(302);
      const callback = await completeLogin(login.headers.location as string, { user: 'grace' });
      await agent
        .get(callback.pathname + callback.search)
        .expect(302)
        .expect('location', '/profile');
      const profile = await agent.get('/profile').set('accept', 'text/html').expect(200);
      expect(profile.text).toContain('"sub": "grace"');
      expect(profile.text).toContain('grace@example.test'); // from userinfo, called with the access token
      await agent.post('/auth/demo/logout?returnTo=/').set('accept', 'text/html').expect(302).expect('location', '/');
      await agent.get('/').expect(200, /Sign in with the demo provider/);
    } finally {
      await example.close();
    }
  });
});

describe('examples/express-redis', () => {
  it('serves one signed-in session from two instances behind the proxy', async () => {
    const example = await redisExample({ port: 0, idpPort: 0, redisPrefix: uniquePrefix('example') });
    try {
      const agent = request.agent(example.url);
      const guarded = await agent.get('/profile').set('accept', 'text/html').expect(302);
      const login = await agent.get(guarded.headers.location as string).expect(302);
      const callback = await completeLogin(login.headers.location as string, { user: 'linus' });
      await agent
        .get(callback.pathname + callback.search)
        .expect(302)
        .expect('location', '/profile');
      const served = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const profile = await agent.get('/profile').set('accept', 'text/html').expect(200);
        expect(profile.text).toContain('Hello <b>linus</b>');
        served.add(/Served by instance (\w)/.exec(profile.text)?.[1] ?? '?');
      }
      expect([...served].sort()).toEqual(['A', 'B']);
    } finally {
      await example.close();
    }
  }, 60_000);
});

describe('npm start on a port that is taken', () => {
  const TSX = fileURLToPath(new URL('../node_modules/tsx/dist/cli.mjs', import.meta.url));

  /** Runs a starter as `npm start` does, and returns how it ended. */
  function start(file: string, env: Record<string, string>) {
    return new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [TSX, file],
        { env: { ...process.env, npm_lifecycle_event: 'start', ...env }, timeout: 20_000 },
        (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
      );
    });
  }

  async function occupy(): Promise<{ server: Server; port: number }> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, port: (server.address() as AddressInfo).port };
  }

  it.each([
    ['the app', 'PORT'],
    ['the demo identity provider', 'IDP_PORT'],
  ])('says that the port of %s is taken and how to choose another, with no stack trace', async (_what, variable) => {
    const busy = await occupy();
    try {
      const env = { PORT: '0', IDP_PORT: '0', [variable]: String(busy.port) };
      const { code, stderr } = await start('examples/express-basic/server.ts', env);
      expect(code).toBe(1);
      expect(stderr).toContain(`Port ${busy.port} is already in use on 127.0.0.1.`);
      expect(stderr).toContain(`choose another port: ${variable}=${busy.port + 1} npm start`);
      expect(stderr).not.toMatch(/^\s+at /m);
    } finally {
      busy.server.close();
    }
  });
});
