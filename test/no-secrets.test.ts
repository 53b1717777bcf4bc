/**
 * Secrets and tokens never reach an error: not its message, not its JSON, not what a logger
 * printing the whole error (with its cause chain) would show. Nor do they reach any response
 * the app sends (bodies and headers, cookies included: those hold sealed values only), the
 * audit hooks, or the console. Run over both adapters.
 */
import type { OutgoingHttpHeaders, Server } from 'node:http';
import { inspect } from 'node:util';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth, OAuthError } from '../src/index.js';
import { adapters } from './support/apps.js';
import {
  BASE_URL,
  CLIENT_SECRET,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

const SESSION_SECRET = 'the-session-secret-that-must-stay-private-0451';

let op: TestServer;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
});
afterAll(async () => {
  await op?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

interface Sent {
  method: string;
  url: string;
  status: number;
  headers: OutgoingHttpHeaders;
  body: string;
}

/** Records every response the server sends, whatever route or error handler produced it. */
function recordResponses(server: Server): Sent[] {
  const sent: Sent[] = [];
  server.prependListener('request', (req, res) => {
    const chunks: Buffer[] = [];
    const keep = (chunk: unknown) => {
      if (typeof chunk === 'string' || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      keep(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      keep(chunk);
      const body = Buffer.concat(chunks).toString('utf8');
      sent.push({ method: req.method ?? '', url: req.url ?? '', status: res.statusCode, headers: res.getHeaders(), body });
      return end(chunk, ...rest);
    }) as typeof res.end;
  });
  return sent;
}

/** What a logger would print for a value, deeply, hidden properties and cause chains included. */
function printed(value: unknown): string {
  return [String(value), safeJson(value), inspect(value, { depth: 8, showHidden: true })].join('\n');
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

describe.each(adapters)('$name adapter: no secret leaves the library', (adapter) => {
  it('keeps secrets, codes and refresh tokens out of every response, error, hook and console line, and access and ID tokens out of all but getToken', async () => {
    const errors: unknown[] = [];
    const hookEvents: Array<{ hook: string; event: unknown }> = [];
    const consoleCalls: unknown[][] = [];
    for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        consoleCalls.push(args);
      });
    }
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: SESSION_SECRET,
      providers: {
        op: testProvider(op),
      },
      hooks: {
        onError: (e) => errors.push(e),
        onLogin: (event) => hookEvents.push({ hook: 'onLogin', event }),
        onRefresh: (event) => hookEvents.push({ hook: 'onRefresh', event }),
        onLogout: (event) => hookEvents.push({ hook: 'onLogout', event }),
      },
    });
    const app = await adapter.start(oauth);
    const sent = recordResponses(app.server);
    // Never anywhere, not even in the test app's own routes: secrets, codes, refresh tokens.
    const secrets = [CLIENT_SECRET, SESSION_SECRET];
    const codes: string[] = [];
    // Access and ID tokens are handed out by getToken on purpose (the test app's /token route
    // echoes them); anywhere else they must not appear.
    const tokensOnlyForTheApp: string[] = [];
    const refreshTokens: string[] = [];
    const bodies: string[] = [];
    const agent = request.agent(app.server);
    let echoedToken = '';
    async function signIn() {
      const started = await agent.get('/auth/op/login').expect(302);
      const callback = await completeLogin(started.headers.location as string);
      codes.push(callback.searchParams.get('code') as string);
      await agent.get(callback.pathname + callback.search).expect(302);
    }
    try {
      // A code the provider refuses (altered): provider_error from the token endpoint.
      const started = await agent.get('/auth/op/login').expect(302);
      const callback = await completeLogin(started.headers.location as string);
      const code = callback.searchParams.get('code') as string;
      codes.push(code);
      callback.searchParams.set('code', `${code}x`);
      codes.push(`${code}x`);
      const refused = await agent.get(callback.pathname + callback.search);
      expect(refused.status).toBe(502);
      expect(refused.body).toMatchObject({ error: 'provider_error', provider_error: 'invalid_grant' });
      bodies.push(refused.text);
      // The same as a browser sees it: an HTML error page.
      const startedHtml = await agent.get('/auth/op/login').expect(302);
      const callbackHtml = await completeLogin(startedHtml.headers.location as string);
      codes.push(callbackHtml.searchParams.get('code') as string);
      callbackHtml.searchParams.set('code', `${callbackHtml.searchParams.get('code')}y`);
      codes.push(callbackHtml.searchParams.get('code') as string);
      const refusedPage = await agent.get(callbackHtml.pathname + callbackHtml.search).set('accept', 'text/html');
      expect(refusedPage.status).toBe(502);
      expect(refusedPage.headers['content-type']).toMatch(/text\/html/);

      // A real login, then a refresh refused by the provider and one it cannot answer.
      op.accessTokenTtl = 30;
      const again = await agent.get('/auth/op/login').expect(302);
      const good = await completeLogin(again.headers.location as string);
      codes.push(good.searchParams.get('code') as string);
      await agent.get(good.pathname + good.search).expect(302);
      const token = (await agent.get('/token/op').expect(200)).body; // refreshed once
      tokensOnlyForTheApp.push(token.accessToken, token.idToken);
      echoedToken = token.accessToken;
      await agent.get('/protected').expect(200, 'protected');
      // The refreshed 30 s token is due at half its life; the clock moves on instead of the test waiting.
      const later = (seconds: number) =>
        vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + seconds * 1000, shouldAdvanceTime: true });
      later(16);
      op.failTokenEndpoint = 503;
      await agent.get('/token/op').expect(200); // provider down: the still-valid token, and an error reported
      op.failTokenEndpoint = undefined;
      await op.revokeGrant(token.accessToken);
      vi.useRealTimers();
      later(18); // past the second of cooldown after the failure
      const reauth = await agent.get('/token/op').expect(401);
      vi.useRealTimers();
      expect(reauth.body.error).toBe('reauth_required');
      bodies.push(reauth.text);

      // The same refusal rendered as a page.
      await signIn();
      await op.revokeGrant((await agent.get('/token/op').expect(200)).body.accessToken);
      later(16);
      const reauthPage = await agent.get('/token/op').set('accept', 'text/html').expect(401);
      vi.useRealTimers();
      expect(reauthPage.headers['content-type']).toMatch(/text\/html/);

      // A logout whose revocation the provider refuses (reported, not thrown), then one that works.
      op.accessTokenTtl = 3600;
      await signIn();
      op.failRevocation = 503;
      await agent.post('/auth/op/logout').set('accept', 'application/json').expect(204);
      op.failRevocation = undefined;
      await signIn();
      await agent.post('/auth/op/logout?returnTo=/bye').set('accept', 'text/html').expect(302).expect('location', '/bye');
      await agent.get('/token/op').expect(401);
    } finally {
      vi.useRealTimers();
      op.failTokenEndpoint = undefined;
      op.failRevocation = undefined;
      const { issued } = op;
      op.reset();
      await app.close();
      refreshTokens.push(...issued.refreshTokens);
      tokensOnlyForTheApp.push(...issued.accessTokens, ...issued.idTokens);
    }
    secrets.push(...codes, ...refreshTokens);

    // The run was real: every kind of secret was issued, and every hook fired.
    expect(codes).toHaveLength(8);
    expect(refreshTokens.length).toBeGreaterThanOrEqual(5); // four logins and refreshes, rotated each time
    expect(tokensOnlyForTheApp.length).toBeGreaterThanOrEqual(10);
    for (const secret of [...secrets, ...tokensOnlyForTheApp]) expect(secret).toMatch(/^\S{16,}$/);
    expect(new Set(hookEvents.map((h) => h.hook))).toEqual(new Set(['onLogin', 'onRefresh', 'onLogout']));
    // The recorder saw every response, tokens included where the app chose to send them.
    const echoed = sent.filter((s) => s.method === 'GET' && s.url === '/token/op' && s.status === 200);
    expect(echoed.some((s) => s.body.includes(echoedToken))).toBe(true);
    expect(sent.length).toBeGreaterThanOrEqual(20);

    expect(errors.map((e) => (e as OAuthError).code)).toEqual(expect.arrayContaining(['provider_error', 'provider_unavailable']));
    expect(errors.length).toBeGreaterThanOrEqual(3); // the refused revocation too
    for (const error of errors) {
      expect(error).toBeInstanceOf(OAuthError);
      const text = printed(error);
      for (const secret of [...secrets, ...tokensOnlyForTheApp]) expect(text).not.toContain(secret);
    }
    for (const body of bodies) for (const secret of secrets) expect(body).not.toContain(secret);

    for (const response of sent) {
      const where = `${response.method} ${response.url} (${response.status})`;
      const headers = JSON.stringify(response.headers);
      const echo = response.url.startsWith('/token/') && response.status === 200;
      for (const secret of secrets) {
        expect(headers, `headers of ${where}`).not.toContain(secret);
        expect(response.body, `body of ${where}`).not.toContain(secret);
      }
      for (const token of tokensOnlyForTheApp) {
        expect(headers, `headers of ${where}`).not.toContain(token);
        if (!echo) expect(response.body, `body of ${where}`).not.toContain(token);
      }
    }
    for (const { hook, event } of hookEvents) {
      const text = printed(event);
      for (const secret of [...secrets, ...tokensOnlyForTheApp]) expect(text, hook).not.toContain(secret);
    }
    const logged = consoleCalls.map((args) => args.map(printed).join(' ')).join('\n');
    for (const secret of [...secrets, ...tokensOnlyForTheApp]) expect(logged).not.toContain(secret);
  });
});
