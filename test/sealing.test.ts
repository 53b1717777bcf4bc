/**
 * Sealing and the cookies this library writes, through HTTP on every adapter, with tokens from a
 * local token endpoint:
 * - a session cookie that does not unseal (tampered, malformed, the app's own iron-session seal made
 *   with the same secret) reads as no session, never a 500, and nothing of it is kept: it takes no
 *   room from sessions in the unseal cache, and every request carrying it is checked again;
 * - a request without a session costs no unseal; a login transaction is unsealed by every callback
 *   that carries it, concurrent ones too (single use: it is never cached);
 * - a session lives exactly its configured lifetime: its cookie says when (Max-Age and Expires),
 *   and it is read until that second, on this instance and on one that never saw it, not at it;
 * - cookies whose names no Set-Cookie can carry, planted beside a chunked session, are neither
 *   deleted nor written back, while the session shrinks or is deleted chunk by chunk;
 * - a session the app reads cannot be changed through what `getToken` returns (it is frozen, one view
 *   shared by every read of the same tokens);
 * - after the response head is sent, a refresh still hands out its token and a logout still ends,
 *   and `onError` says the session cookie could not be written; a token due but not expired is
 *   then not refreshed in a cookie session (its successor could not be kept), and is in a server one.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import { sealData } from 'iron-session';
import Koa from 'koa';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as expressAdapter from '../src/express.js';
import * as koaAdapter from '../src/koa.js';
import { createOAuth, memoryStore, type OAuth, type OAuthConfig, type OAuthContext } from '../src/index.js';
import { oauth2 } from '../src/providers/index.js';
import { adapters, frameworks, type RunningApp } from './support/apps.js';
import { freshTokens, startTokenEndpoint, type TokenAnswer, type TokenEndpoint } from './support/token-endpoint.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const SESSION = 'oauth_session-p';

let endpoint: TokenEndpoint;
beforeAll(async () => {
  endpoint = await startTokenEndpoint();
});
afterAll(async () => {
  await endpoint?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

function config(overrides: Partial<OAuthConfig> = {}): OAuthConfig {
  return {
    baseUrl: 'http://127.0.0.1:3999',
    secret: SECRET,
    providers: {
      p: oauth2({
        authorization: `${endpoint.origin}/authorize`,
        token: `${endpoint.origin}/token`,
        clientId: 'client',
        clientSecret: 'client-secret-0123456789',
      }),
    },
    ...overrides,
  };
}

const setCookies = (res: request.Response) => (res.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
const nameOf = (line: string) => line.slice(0, line.indexOf('='));

/** Tokens of `length` characters that live an hour (not due), or 30 s (due at first use). */
const tokens =
  (length: number, expiresIn = 3600, extra: Record<string, unknown> = {}) =>
  (): TokenAnswer => ({
    status: 200,
    body: { ...freshTokens({ length, refreshToken: 'rt-fixed' }), expires_in: expiresIn, ...extra },
  });

/** A whole login; the session's `name=value` pairs, as the browser then sends them. */
async function login(server: Server, answer: () => TokenAnswer): Promise<string[]> {
  endpoint.answer = answer;
  const started = await request(server).get('/auth/p/login').expect(302);
  const state = new URL(started.headers.location as string).searchParams.get('state') as string;
  const landed = await request(server)
    .get(`/auth/p/callback?code=c&state=${state}`)
    .set(
      'cookie',
      setCookies(started)
        .map((line) => line.split(';')[0])
        .join('; '),
    )
    .expect(302);
  const session = setCookies(landed)
    .map((line) => line.split(';')[0] as string)
    .filter((pair) => pair.startsWith(SESSION) && !pair.endsWith('='));
  expect(session.length).toBeGreaterThan(0);
  return session;
}

describe.each(adapters)('$name adapter', (adapter) => {
  const running: RunningApp[] = [];
  async function start(overrides: Partial<OAuthConfig> = {}): Promise<{ oauth: OAuth; server: Server }> {
    const oauth = createOAuth(config(overrides));
    const app = await adapter.start(oauth);
    running.push(app);
    return { oauth, server: app.server };
  }
  afterEach(async () => {
    await Promise.all(running.splice(0).map((app) => app.close()));
  });

  it('reads a session cookie that does not unseal as no session, never a 500, and keeps nothing of it', async () => {
    const { oauth, server } = await start();
    const [session] = await login(server, tokens(40));
    const value = (session as string).slice(SESSION.length + 1);
    const hostile = {
      tampered: `${value.slice(0, -6)}AAAA~2`,
      'the app’s own seal, same secret': await sealData({ user: { id: 7 } }, { password: SECRET }),
      'a wrong prefix': 'Fe26.1*1*a*b*c*1*d*e~2',
      'an expiry that is no number': 'Fe26.2*1*a*b*c*soon*d*e~2',
    };
    for (const [what, bad] of Object.entries(hostile)) {
      const before = oauth.stats.unseals;
      for (let i = 0; i < 2; i++) {
        const res = await request(server).get('/connected/p').set('cookie', `${SESSION}=${bad}`);
        expect([what, res.status, res.body]).toEqual([what, 200, { connected: false, connections: [] }]);
      }
      // Not cached, not remembered: each request checks it again (it would take a session's place).
      expect([what, oauth.stats.unseals - before]).toEqual([what, 2]);
    }
    await request(server)
      .get('/connected/p')
      .set('cookie', session as string)
      .expect(200, { connected: true, connections: ['p'] });
  });

  it('unseals nothing for a request without a session cookie', async () => {
    const { oauth, server } = await start();
    await request(server).get('/connected/p').expect(200, { connected: false, connections: [] });
    await request(server).get('/connected/p').set('cookie', 'theme=dark').expect(200, { connected: false, connections: [] });
    expect(oauth.stats).toEqual({ seals: 0, unseals: 0 });
  });

  it('unseals a login transaction for every callback that carries it, concurrent ones too: it is never cached', async () => {
    const { oauth, server } = await start();
    endpoint.answer = tokens(40);
    const started = await request(server).get('/auth/p/login').expect(302);
    // The login sealed its transaction once and opened nothing.
    expect(oauth.stats).toEqual({ seals: 1, unseals: 0 });
    const transaction = setCookies(started)
      .map((line) => line.split(';')[0])
      .join('; ');
    const state = new URL(started.headers.location as string).searchParams.get('state') as string;
    const callback = (withState: string) =>
      request(server)
        .get(`/auth/p/callback?code=c&state=${withState}`)
        .set('cookie', transaction)
        .set('accept', 'application/json');
    const before = oauth.stats.unseals;
    for (let i = 0; i < 2; i++) expect((await callback('x'.repeat(43)).expect(400)).body.error).toBe('state_mismatch');
    expect(oauth.stats.unseals - before).toBe(2);
    const burst = await Promise.all(Array.from({ length: 30 }, () => callback('y'.repeat(43))));
    expect(burst.map((res) => res.status)).toEqual(Array(30).fill(400));
    expect(oauth.stats.unseals - before).toBe(32);
    await callback(state).expect(302);
    // The callback that matched sealed the session.
    expect(oauth.stats.seals).toBe(2);
  });

  it('keeps a session exactly its configured lifetime: Max-Age and Expires say so, and it reads until that second', async () => {
    const seconds = Math.floor(Date.now() / 1000);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(seconds * 1000 + 500);
    const issuer = await start({ sessionMaxAgeSeconds: 3600 });
    endpoint.answer = tokens(40);
    const started = await request(issuer.server).get('/auth/p/login').expect(302);
    const [transaction] = setCookies(started);
    const end = new Date((seconds + 3600) * 1000).toUTCString();
    expect(transaction).toContain(`Expires=${new Date((seconds + 600) * 1000).toUTCString()}`);
    const state = new URL(started.headers.location as string).searchParams.get('state') as string;
    const landed = await request(issuer.server)
      .get(`/auth/p/callback?code=c&state=${state}`)
      .set('cookie', (transaction as string).split(';')[0] as string)
      .expect(302);
    const written = setCookies(landed);
    const line = written.find((l) => l.startsWith(`${SESSION}=`)) as string;
    expect(line).toContain('Max-Age=3600');
    expect(line).toContain(`Expires=${end}`);
    // The transaction is deleted for clients that read Expires only as well.
    const deleted = written.find((l) => l.startsWith('oauth_tx.')) as string;
    expect(deleted).toMatch(/=; Max-Age=0;/);
    expect(deleted).toContain('Expires=Thu, 01 Jan 1970 00:00:00 GMT');

    const cookie = line.split(';')[0] as string;
    const other = await start({ sessionMaxAgeSeconds: 3600 }); // the same secret, an instance that never saw it
    const connected = async (server: Server) => (await request(server).get('/connected/p').set('cookie', cookie)).body.connected;
    vi.setSystemTime((seconds + 3600) * 1000 - 1);
    expect([await connected(issuer.server), await connected(other.server)]).toEqual([true, true]);
    vi.setSystemTime((seconds + 3600) * 1000);
    expect([await connected(issuer.server), await connected(other.server)]).toEqual([false, false]);
  });

  it('leaves cookies whose names no Set-Cookie can carry alone while a chunked session shrinks, then is deleted', async () => {
    const { server } = await start();
    const stray = [`${SESSION}.a b=1`, `${SESSION}.\u00e9=2`, 'oauth_tx.x y=3'];
    const chunks = await login(server, tokens(6000, 30)); // due at first use
    expect(chunks.map(nameOf)).toEqual([`${SESSION}.0`, `${SESSION}.1`, `${SESSION}.2`]);

    endpoint.answer = tokens(100); // the refresh fits one cookie: every chunk goes
    const shrunk = await request(server)
      .get('/token/p')
      .set('cookie', [...stray, ...chunks].join('; '))
      .expect(200);
    expect(shrunk.body.accessToken).toHaveLength(100);
    const written = setCookies(shrunk);
    expect(written.map(nameOf).sort()).toEqual([SESSION, `${SESSION}.0`, `${SESSION}.1`, `${SESSION}.2`]);
    const single = written.find((l) => l.startsWith(`${SESSION}=`))?.split(';')[0] as string;

    const chunked = await login(server, tokens(6000));
    for (const [session, names] of [
      [[single], [SESSION]],
      [chunked, [`${SESSION}.0`, `${SESSION}.1`, `${SESSION}.2`]],
    ] as const) {
      const out = await request(server)
        .post('/disconnect/p')
        .set('cookie', [...stray, ...session].join('; '))
        .expect(204);
      // Exactly the session's own cookies are deleted, for clients that read Expires only as well.
      expect(setCookies(out).map(nameOf).sort()).toEqual(names);
      for (const l of setCookies(out)) expect(l).toMatch(/^[^=]+=; Max-Age=0; .*Expires=Thu, 01 Jan 1970 00:00:00 GMT/);
    }
  });
});

// Routes the shared test app does not have: a response streamed before the token is asked for,
// and an app that tries to change what getToken returned.

/** What a route does with the request's `oauth`; its answer, as text. */
async function act(oauth: OAuthContext, action: string): Promise<string> {
  if (action === 'logout') {
    await oauth.logout('p');
    return 'logged out';
  }
  const token = await oauth.getToken('p');
  if (action === 'change') {
    const writes = [
      () => Object.assign(token.extras.team as { id: string }, { id: 'changed' }),
      () => Object.assign(token.extras, { plan: 'changed' }),
      () => Object.assign(token, { accessToken: 'changed', scope: 'changed' }),
    ];
    for (const write of writes) {
      try {
        write();
      } catch {
        // Frozen: the session is not the app's to change.
      }
    }
  }
  if (action === 'same') {
    const again = await oauth.getToken('p');
    return JSON.stringify({ same: again === token, frozen: Object.isFrozen(token) && Object.isFrozen(token.extras) });
  }
  return JSON.stringify(token);
}

function expressApp(oauth: OAuth, framework: typeof express) {
  const app = framework();
  app.use(expressAdapter.oauthMiddleware(oauth));
  app.get('/stream/:action', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('head sent\n');
    act(req.oauth, String(req.params.action)).then(
      (text) => res.end(text),
      (err: Error) => res.end(`error: ${err.message}`),
    );
  });
  app.get('/do/:action', (req, res, next) => {
    act(req.oauth, String(req.params.action)).then((text) => res.type('json').send(text), next);
  });
  app.use(expressAdapter.oauthErrorHandler());
  return app;
}

function koaApp(oauth: OAuth, Framework: typeof Koa) {
  const app = new Framework();
  app.silent = true;
  app.use(koaAdapter.oauthErrorHandler());
  app.use(koaAdapter.oauthMiddleware(oauth));
  app.use(async (ctx) => {
    const [, first, action = ''] = ctx.path.split('/');
    if (first === 'stream') {
      ctx.respond = false;
      ctx.res.writeHead(200, { 'content-type': 'text/plain' });
      ctx.res.write('head sent\n');
      ctx.res.end(await act(ctx.oauth, action).catch((err: Error) => `error: ${err.message}`));
    } else if (first === 'do') {
      ctx.type = 'json';
      ctx.body = await act(ctx.oauth, action);
    }
  });
  return app;
}

describe.each(frameworks)('$name, routes of its own', ({ kind, framework }) => {
  const servers: Server[] = [];
  const errors: unknown[] = [];
  async function start(overrides: Partial<OAuthConfig> = {}): Promise<Server> {
    const oauth = createOAuth(config({ hooks: { onError: (err) => errors.push(err) }, ...overrides }));
    const server = createServer(
      kind === 'express' ? expressApp(oauth, framework as typeof express) : koaApp(oauth, framework as typeof Koa).callback(),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return server;
  }
  afterEach(async () => {
    errors.length = 0;
    await Promise.all(
      servers.splice(0).map(
        (server) =>
          new Promise((resolve) => {
            server.closeAllConnections();
            server.close(resolve);
          }),
      ),
    );
  });
  const unwritten = () => errors.filter((err) => err instanceof Error && /after the response head was sent/.test(err.message));

  it.each([
    ['one cookie', 40],
    ['chunks', 6000],
  ])(
    'hands out the token of a refresh made after the head was sent (session in %s), and reports the cookie it could not write',
    async (_case, length) => {
      const server = await start();
      const session = await login(server, tokens(length, 30));
      endpoint.answer = tokens(length, 3600);
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 31_000, shouldAdvanceTime: true }); // expired: it must refresh
      const res = await request(server).get('/stream/token').set('cookie', session.join('; ')).expect(200);
      vi.useRealTimers();
      const [head, body = ''] = res.text.split('\n');
      expect(head).toBe('head sent');
      expect(JSON.parse(body).accessToken).toHaveLength(length);
      expect(endpoint.requests.at(-1)?.params.get('grant_type')).toBe('refresh_token');
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(unwritten()).toHaveLength(1);
    },
  );

  it.each([
    ['the cookie store: the token that still works, no refresh', 'cookie', 0],
    ['a server store: a refresh, stored all the same', 'memory', 1],
  ] as const)('hands out, for a token due but not expired once the head was sent, with %s', async (_case, store, refreshes) => {
    const server = await start(store === 'memory' ? { store: memoryStore() } : {});
    const session = await login(server, tokens(40, 120));
    const before = endpoint.requests.length;
    endpoint.answer = tokens(40, 3600);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 70_000, shouldAdvanceTime: true }); // due (skew 60 s), not expired
    const res = await request(server).get('/stream/token').set('cookie', session.join('; ')).expect(200);
    vi.useRealTimers();
    expect(res.text.split('\n')[0]).toBe('head sent');
    expect(endpoint.requests.length - before).toBe(refreshes);
  });

  it('ends a logout made after the head was sent, and reports the cookie it could not delete', async () => {
    const server = await start();
    const session = await login(server, tokens(40));
    const res = await request(server).get('/stream/logout').set('cookie', session.join('; ')).expect(200);
    expect(res.text).toBe('head sent\nlogged out');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(unwritten()).toHaveLength(1);
  });

  it('keeps a session unchanged when the app writes to what getToken returned, here and on an instance that unsealed it', async () => {
    const issuer = await start();
    const session = await login(issuer, tokens(40, 3600, { team: { id: 'team-1' } }));
    const other = await start();
    for (const server of [issuer, other]) {
      await request(server).get('/do/change').set('cookie', session.join('; ')).expect(200);
      const again = await request(server).get('/do/token').set('cookie', session.join('; ')).expect(200);
      expect(again.body.extras).toEqual({ team: { id: 'team-1' } });
      expect(again.body.accessToken).not.toBe('changed');
      expect(again.body.scope).toBeUndefined();
    }
  });

  it('hands every read of the same tokens one frozen view', async () => {
    const server = await start();
    const session = await login(server, tokens(40, 3600, { team: { id: 'team-1' } }));
    const res = await request(server).get('/do/same').set('cookie', session.join('; ')).expect(200);
    expect(res.body).toEqual({ same: true, frozen: true });
  });
});
