/**
 * Provider faults, on the wire: a fault proxy (test/support/fault-proxy.ts) in front of the real
 * authorization server (oidc-provider, for `oidc()`) and of the Pipedrive emulator (a profile
 * preset) breaks the token endpoint's answers in every way a network and a provider can, at the
 * code exchange and at refresh. Each fault must give its documented code and status (README,
 * Errors: network, timeouts, 5xx and 429 are `503 provider_unavailable`, malformed answers
 * `502 invalid_response`, an RFC 6749 error `502 provider_error`); no stored token may be lost
 * or overwritten, the still-valid access token is served during an outage, and once the
 * provider is back the old session refreshes once. Then the refresh cooldown: a failing provider
 * is not stormed.
 *
 * Every test starts its own provider, proxy and app, so that they run concurrently (most of
 * their time is spent waiting for tokens to expire or requests to time out).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as client from 'openid-client';
import { createOAuth, memoryStore, type OAuthError } from '../src/index.js';
import type { OAuthConfig } from '../src/config.js';
import { oidc, pipedrive } from '../src/providers/index.js';
import { translateClientError } from '../src/providers/openid.js';
import type { ProviderDefinition } from '../src/providers/types.js';
import { startPipedriveEmulator } from '../emulators/index.js';
import { type Adapter, adapters, type RunningApp } from './support/apps.js';
import { BASE_URL, CLIENT_ID, CLIENT_SECRET, completeLogin, startAuthorizationServer } from './support/authorization-server.js';
import { FAULT_ACCESS_TOKEN, type Fault, type FaultProxy, startFaultProxy } from './support/fault-proxy.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
// The cooldown lives in the core, not in the adapters: its timing-bound tests run on the newest
// Express and Koa only, which keeps them to one wave of concurrent tests.
const COOLDOWN_ADAPTERS = adapters.filter(({ name }) => name === 'express' || name === 'koa');
// Short enough that a stalled provider costs a second, long enough for a healthy one on a busy machine.
const TIMEOUT_SECONDS = 1;

type Outcome = 'provider_unavailable' | 'invalid_response' | 'provider_error';
const STATUS: Record<Outcome, number> = { provider_unavailable: 503, invalid_response: 502, provider_error: 502 };

const json = (body: unknown) => ({ body: JSON.stringify(body), contentType: 'application/json' });

/** Faults of the transport and of the provider's health: the same at exchange and at refresh. */
const OUTAGES: Array<[string, Fault, Outcome]> = [
  ['connection reset before the answer', 'drop', 'provider_unavailable'],
  ['connection reset in the middle of the body', 'reset-mid-body', 'provider_unavailable'],
  ['no answer (stalled before the headers)', 'stall-before-headers', 'provider_unavailable'],
  ['headers, then no body (stalled)', 'stall-after-headers', 'provider_unavailable'],
  ['500 with an HTML page', { status: 500 }, 'provider_unavailable'],
  ['502 from a gateway', { status: 502 }, 'provider_unavailable'],
  ['503 with an RFC 6749 error', { status: 503, ...json({ error: 'temporarily_unavailable' }) }, 'provider_unavailable'],
  [
    '429 with Retry-After',
    { status: 429, ...json({ error: 'slow_down' }), headers: { 'retry-after': '30' } },
    'provider_unavailable',
  ],
  ['429 with an HTML page', { status: 429 }, 'provider_unavailable'],
  ['200 with an HTML page', 'html', 'invalid_response'],
  ['200 with truncated JSON', 'truncated-json', 'invalid_response'],
  [
    '400 with an RFC 6749 error',
    { status: 400, ...json({ error: 'invalid_request', error_description: 'injected' }) },
    'provider_error',
  ],
];

// Nonsense lifetimes, as JSON texts: a string that is no number, a negative one, one that parses to
// Infinity, an object. (A missing one means "no expiry": see the import test below.)
const NONSENSE_EXPIRIES = ['"soon"', '-5', '1e400', '{}'];

/**
 * At the code exchange, the answers with one thing wrong are the provider's real answer (ID token
 * included) with that field changed: the code is spent either way.
 */
const EXCHANGE_FAULTS: Array<[string, Fault, Outcome]> = [
  ...OUTAGES,
  ['200 without access_token', { patch: { access_token: null } }, 'invalid_response'],
  ...NONSENSE_EXPIRIES.map((raw): [string, Fault, Outcome] => [
    `200 with expires_in ${raw}`,
    { patch: { expires_in: raw } },
    'invalid_response',
  ]),
];

/**
 * At refresh the proxy answers by itself, so that the provider never sees the refresh token: a
 * rotating provider (oidc-provider) would have spent it, and the old session could not come back.
 */
const REFRESH_FAULTS: Array<[string, Fault, Outcome]> = [
  ...OUTAGES,
  ['200 without access_token', 'no-access-token', 'invalid_response'],
  ...NONSENSE_EXPIRIES.map((raw): [string, Fault, Outcome] => [
    `200 with expires_in ${raw}`,
    { expiresIn: raw },
    'invalid_response',
  ]),
];

/**
 * What the app's error says of each fault at the code exchange (the README's Errors table gives the
 * codes): a profile reads a nonsense expiry itself, openid-client validates the standard answer.
 */
function exchangeMessage(label: string, profile: boolean): string {
  if (label.startsWith('200 with expires_in') && profile) {
    return "The provider's token answer gives an access token expiry that is not a time.";
  }
  if (label.startsWith('200')) return 'The provider sent an answer that failed validation.';
  if (label === '429 with Retry-After') return 'The provider is rate limiting.';
  if (label.startsWith('400')) return 'The provider refused the request.';
  if (/^(429|5\d\d)/.test(label)) return 'The provider did not answer in time or failed.';
  return 'The provider could not be reached, or its answer was cut off or late.';
}

/** What a test drives: one provider behind its own fault proxy. */
interface Upstream {
  /** The provider's name in the app. */
  name: string;
  /** The token endpoint's path at the proxy (code exchange and refresh alike). */
  tokenPath: string;
  proxy: FaultProxy;
  /** With `timeoutSeconds: 'default'`, the option is left out. */
  definition(options?: { timeoutSeconds?: number | 'default' }): ProviderDefinition;
  /** Acts as the consenting user: from the authorization URL to the app's callback URL. */
  authorize(authorizationUrl: string): Promise<URL>;
  /** Lifetime in seconds of the access tokens issued from now on. */
  setTtl(seconds: number): void;
  /** Code exchanges and refreshes the provider itself handled. */
  handled(): { exchanges: number; refreshes: number };
  /** Every access and refresh token the provider issued, newest last. */
  issued(): { accessTokens: string[]; refreshTokens: string[] };
  close(): Promise<void>;
}

/**
 * oidc-provider behind the proxy, at its own issuer: the server is started, moved to another port,
 * and the proxy takes the issuer's port. Discovery, the login pages, the keys and the token
 * endpoint are all reached through the proxy, and nothing in them is rewritten.
 */
async function oidcProvider(): Promise<Upstream> {
  const name = 'op'; // the guarded route of the test apps is for `op`
  const op = await startAuthorizationServer([name]);
  const moved = createServer(op.provider.callback());
  await new Promise<void>((resolve) => moved.listen(0, '127.0.0.1', resolve));
  await op.close();
  const proxy = await startFaultProxy({ upstream: origin(moved), port: Number(new URL(op.issuer).port) });
  return {
    name,
    tokenPath: '/token',
    proxy,
    definition: ({ timeoutSeconds = TIMEOUT_SECONDS } = {}) =>
      oidc({
        issuer: op.issuer,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        scopes: ['openid', 'profile', 'email', 'offline_access'],
        authorizationParams: { prompt: 'consent' },
        ...(timeoutSeconds === 'default' ? {} : { timeoutSeconds }),
      }),
    authorize: (url) => completeLogin(url),
    setTtl: (seconds) => {
      op.accessTokenTtl = seconds;
    },
    handled: () => ({ exchanges: op.counts.authorization_code, refreshes: op.counts.refresh_token }),
    issued: () => ({ accessTokens: [...op.issued.accessTokens], refreshTokens: [...op.issued.refreshTokens] }),
    async close() {
      await proxy.close();
      await closeServer(moved);
    },
  };
}

/** The Pipedrive emulator behind the proxy, reached through the preset's `endpoints`. */
async function pipedriveProvider(): Promise<Upstream> {
  const name = 'pipedrive';
  const emulator = await startPipedriveEmulator({ redirectUri: `${BASE_URL}/auth/${name}/callback` });
  const proxy = await startFaultProxy({ upstream: emulator.origin });
  const endpoints = {
    authorization: `${proxy.origin}/oauth/authorize`,
    token: `${proxy.origin}/oauth/token`,
    refresh: `${proxy.origin}/oauth/token`,
    revoke: `${proxy.origin}/oauth/revoke`,
  };
  return {
    name,
    tokenPath: '/oauth/token',
    proxy,
    definition: ({ timeoutSeconds = TIMEOUT_SECONDS } = {}) =>
      pipedrive({
        clientId: emulator.clientId,
        clientSecret: emulator.clientSecret,
        endpoints,
        ...(timeoutSeconds === 'default' ? {} : { timeoutSeconds }),
      }),
    authorize: (url) => emulator.authorize(url),
    setTtl: (seconds) => {
      emulator.accessTokenTtl = seconds;
    },
    handled: () => ({ exchanges: emulator.counts.token, refreshes: emulator.counts.refresh }),
    issued: () => ({
      accessTokens: emulator.issued.map((i) => i.accessToken),
      refreshTokens: emulator.issued.flatMap((i) => (i.refreshToken ? [i.refreshToken] : [])),
    }),
    async close() {
      await proxy.close();
      await emulator.close();
    },
  };
}

/**
 * oidc-provider servers started before the tests, one for each concurrent test that needs one:
 * starting one generates an RSA key, which blocks the event loop (up to a second on a busy
 * machine) and so would time out the requests of the tests running beside it.
 */
const spareOidcProviders: Upstream[] = [];
const CONCURRENT_OIDC_TESTS = adapters.length * 3 + COOLDOWN_ADAPTERS.length;

beforeAll(async () => {
  for (let i = 0; i < CONCURRENT_OIDC_TESTS; i++) spareOidcProviders.push(await oidcProvider());
}, 60_000);
afterAll(async () => {
  await Promise.all(spareOidcProviders.splice(0).map((upstream) => upstream.close()));
});

/** A started oidc-provider behind its proxy: a spare one, or a new one. */
async function spareOidcProvider(): Promise<Upstream> {
  return spareOidcProviders.pop() ?? oidcProvider();
}

const PROVIDERS = [
  { label: 'oidc() on oidc-provider', start: spareOidcProvider },
  { label: 'pipedrive() on its emulator', start: pipedriveProvider },
];

interface Harness {
  upstream: Upstream;
  app: RunningApp;
  /** Every error reported to `hooks.onError`. */
  reported: Array<{ code?: unknown; status?: unknown }>;
  /** A new browser (its own cookie jar). */
  browser(): request.Agent;
}

/** A provider behind its proxy and an app on `adapter` using it; both stopped when the test ends. */
async function harness(
  adapter: Adapter,
  start: () => Promise<Upstream>,
  onTestFinished: (fn: () => Promise<void>) => void,
  config: Partial<OAuthConfig> = {},
): Promise<Harness> {
  const upstream = await start();
  onTestFinished(() => upstream.close());
  const reported: Harness['reported'] = [];
  const oauth = createOAuth({
    baseUrl: BASE_URL,
    secret: SECRET,
    providers: { [upstream.name]: upstream.definition() },
    hooks: { onError: (error) => reported.push(error as Harness['reported'][number]) },
    ...config,
  });
  const app = await adapter.start(oauth);
  onTestFinished(() => app.close());
  return { upstream, app, reported, browser: () => request.agent(app.server) };
}

/** Starts a login in `browser` and consents at the provider: the callback, still to be visited. */
async function consent(browser: request.Agent, upstream: Upstream): Promise<string> {
  const login = await browser.get(`/auth/${upstream.name}/login`).expect(302);
  const callback = await upstream.authorize(login.headers.location as string);
  return callback.pathname + callback.search;
}

/** A whole login; returns the refresh token the provider issued for it (logins must not overlap). */
async function signIn(browser: request.Agent, upstream: Upstream): Promise<string> {
  const res = await browser.get(await consent(browser, upstream));
  if (res.status !== 302) throw new Error(`the login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return upstream.issued().refreshTokens.at(-1) as string;
}

/** The browser's token, as `getToken` gives it: status, and the access token or the error code. */
async function token(browser: request.Agent, upstream: Upstream): Promise<string> {
  const res = await browser.get(`/token/${upstream.name}`).set('accept', 'application/json');
  return `${res.status} ${res.status === 200 ? res.body.accessToken : res.body.error}`;
}

const failed = (outcome: Outcome) => `${STATUS[outcome]} ${outcome}`;

function origin(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until every token issued with `lifetime` seconds before `after` (epoch ms) is expired
 * (`at` 1) or due (`at` 0.5), in the whole seconds the library counts in: `expiresAt` is at most
 * the second of the login plus the lifetime, and a token is due `refreshSkewSeconds` before, or at
 * half its life when that comes later (a short-lived token).
 */
async function untilLifetime(after: number, lifetime: number, at: 0.5 | 1): Promise<void> {
  const target = (Math.floor(after / 1000) + Math.ceil(lifetime * at)) * 1000 + 50;
  await sleep(Math.max(0, target - Date.now()));
}

describe('a failed provider call', () => {
  const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  const syscall = (code: string) => Object.assign(new Error(`read ${code}`), { code });
  // openid-client's report of a body it could not parse, around what reading it threw.
  const unreadable = (cause: unknown) =>
    Object.assign(
      new client.ClientError('parsing error occured', {
        cause: Object.assign(new Error('failed to parse "response" body as JSON', { cause }), {
          name: 'OperationProcessingError',
          code: 'OAUTH_PARSE_ERROR',
        }),
      }),
      { code: 'OAUTH_PARSE_ERROR' },
    );

  // What openid-client and undici throw (the faults above reach these through real sockets); the
  // presets' own requests (recovery, token info, revocation) reach translateClientError unwrapped.
  it.each([
    ['a timeout of a request made without openid-client', timeout, 'provider_unavailable'],
    ['an abort', new DOMException('This operation was aborted', 'AbortError'), 'provider_unavailable'],
    ['a socket error without fetch around it', syscall('ECONNRESET'), 'provider_unavailable'],
    [
      'a body cut off by a reset',
      unreadable(new TypeError('terminated', { cause: syscall('ECONNRESET') })),
      'provider_unavailable',
    ],
    ['a body that stopped coming', unreadable(timeout), 'provider_unavailable'],
    ['a whole body that is not JSON', unreadable(new SyntaxError('Unexpected end of JSON input')), 'invalid_response'],
  ])('classifies %s', (_, err, code) => {
    const translated = translateClientError(err);
    expect(translated.code).toBe(code);
  });

  const UNREACHABLE = 'The provider could not be reached, or its answer was cut off or late.';
  const chain = (depth: number): Error =>
    depth === 0 ? new RangeError('bottom') : new Error(`level ${depth}`, { cause: chain(depth - 1) });
  it.each([
    [
      'a refused connection',
      new TypeError('fetch failed', { cause: syscall('ECONNREFUSED') }),
      ['provider_unavailable', UNREACHABLE, 'TypeError: fetch failed <- Error: ECONNREFUSED'],
    ],
    [
      'a timeout inside an error',
      new Error('outer', { cause: timeout }),
      ['provider_unavailable', UNREACHABLE, 'Error: outer <- TimeoutError: The operation was aborted due to timeout'],
    ],
    [
      "fetch's failure with no code below it",
      new TypeError('fetch failed'),
      ['provider_unavailable', UNREACHABLE, 'TypeError: fetch failed'],
    ],
    [
      'an abort inside an error',
      new Error('outer', { cause: new DOMException('This operation was aborted', 'AbortError') }),
      ['provider_unavailable', UNREACHABLE, 'Error: outer <- AbortError: This operation was aborted'],
    ],
    [
      "fetch's word below, in an Error that is no TypeError",
      new Error('outer', { cause: new Error('terminated') }),
      ['invalid_response', 'The provider call failed unexpectedly.', 'Error: outer <- Error'],
    ],
    [
      'a TypeError of other words below',
      new Error('outer', { cause: new TypeError('the answer was access-token-123') }),
      ['invalid_response', 'The provider call failed unexpectedly.', 'Error: outer <- TypeError'],
    ],
    [
      'another TypeError',
      new TypeError('bad header'),
      ['provider_unavailable', 'The provider could not be reached.', 'TypeError: bad header'],
    ],
    [
      "an Error that only says fetch's word",
      new Error('terminated'),
      ['invalid_response', 'The provider call failed unexpectedly.', 'Error: terminated'],
    ],
    [
      'an error whose code is no text',
      Object.assign(new Error('odd'), { code: 42 }),
      ['invalid_response', 'The provider call failed unexpectedly.', 'Error: odd'],
    ],
    ['something not an error', 'a string', ['invalid_response', 'The provider call failed unexpectedly.', 'non-error thrown']],
    [
      'a chain of causes longer than six',
      chain(8),
      [
        'invalid_response',
        'The provider call failed unexpectedly.',
        'Error: level 8 <- Error <- Error <- Error <- Error <- Error',
      ],
    ],
  ])('says what %s is, in its code, message and summary', (_, err, [code, message, summary]) => {
    const translated = translateClientError(err);
    expect([translated.code, translated.message, (translated.cause as Error).message]).toEqual([code, message, summary]);
  });

  it("keeps nothing of the answer in the cause's summary: a JSON parse error quotes the body", () => {
    const quoted = new SyntaxError('Unexpected token \'a\', "access-token-123 and more" is not valid JSON');
    const summary = String((translateClientError(unreadable(quoted)).cause as Error).message);
    expect(summary).toContain('SyntaxError');
    expect(summary).not.toContain('access-token-123');
    const cut = String((translateClientError(unreadable(new TypeError('terminated'))).cause as Error).message);
    expect(cut).toMatch(/TypeError: terminated/);
  });

  it.each([
    ['oidc()', oidcProvider],
    ['pipedrive()', pipedriveProvider],
  ])('refuses an imported answer with a nonsense expires_in, as one from the token endpoint, with %s', async (_, start) => {
    const upstream = await start();
    try {
      const oauth = createOAuth({
        baseUrl: BASE_URL,
        secret: SECRET,
        providers: { [upstream.name]: upstream.definition() },
        store: memoryStore(),
        subject: () => 'user-1',
      });
      const user = oauth.tokens('user-1');
      for (const expiresIn of ['soon', -5, Number.POSITIVE_INFINITY, {}]) {
        const answer = { access_token: 'imported-token', token_type: 'Bearer', expires_in: expiresIn };
        const refused = await user.importTokens(upstream.name, { answer }).then(
          () => undefined,
          (err: OAuthError) => `${err.status} ${err.code}`,
        );
        expect(refused).toBe(failed('invalid_response'));
      }
      // A number of seconds written as text is one, as openid-client reads it.
      const before = Math.floor(Date.now() / 1000);
      await user.importTokens(upstream.name, { answer: { access_token: 'imported-token', expires_in: '3600' } });
      const { expiresAt } = await user.getToken(upstream.name);
      expect(expiresAt).toBeGreaterThanOrEqual(before + 3600);
      expect(expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 3600);
      // And a missing expiry is no expiry, not an error.
      await user.importTokens(upstream.name, { answer: { access_token: 'imported-token', token_type: 'Bearer' } });
      expect((await user.getToken(upstream.name)).expiresAt).toBeUndefined();
    } finally {
      await upstream.close();
    }
  });
});

describe.concurrent.each(adapters)('$name adapter', (adapter) => {
  describe.each(PROVIDERS)('$label', ({ start, label: providerLabel }) => {
    it('answers each fault at the code exchange with its code, status and message, and keeps the session it had', async ({
      expect,
      onTestFinished,
    }) => {
      const { upstream, browser: newBrowser } = await harness(adapter, start, onTestFinished);
      const browser = newBrowser();
      await signIn(browser, upstream);
      const kept = upstream.issued().accessTokens.at(-1);
      const outcomes: Record<string, string> = {};
      const messages: Record<string, string> = {};
      for (const [label, fault] of EXCHANGE_FAULTS) {
        const callback = await consent(browser, upstream);
        upstream.proxy.fail(upstream.tokenPath, fault);
        const res = await browser.get(callback).set('accept', 'application/json');
        upstream.proxy.heal();
        outcomes[label] = `${res.status} ${res.body.error}`;
        messages[label] = res.body.message;
      }
      const callback = await consent(browser, upstream);
      await upstream.proxy.refuse();
      const refused = await browser.get(callback).set('accept', 'application/json');
      await upstream.proxy.accept();
      outcomes['connection refused'] = `${refused.status} ${refused.body.error}`;

      expect(outcomes).toEqual({
        ...Object.fromEntries(EXCHANGE_FAULTS.map(([label, , outcome]) => [label, failed(outcome)])),
        'connection refused': failed('provider_unavailable'),
      });
      const profile = providerLabel.startsWith('pipedrive');
      expect(messages).toEqual(Object.fromEntries(EXCHANGE_FAULTS.map(([label]) => [label, exchangeMessage(label, profile)])));
      expect(upstream.proxy.count(upstream.tokenPath)).toBe(1 + EXCHANGE_FAULTS.length);
      // The session from before is untouched, and a login works again.
      expect(await token(browser, upstream)).toBe(`200 ${kept}`);
      await signIn(browser, upstream);
      expect(await token(browser, upstream)).toBe(`200 ${upstream.issued().accessTokens.at(-1)}`);
    });

    it('answers each fault at the refresh of an expired token with its code and status, loses no token, and refreshes once when the provider is back', async ({
      expect,
      onTestFinished,
    }) => {
      const { upstream, browser: newBrowser } = await harness(adapter, start, onTestFinished);
      // One login per fault: a failed refresh makes its grant wait before the next attempt.
      // The last login meets a closed port (the proxy stops listening).
      const cases: Array<[string, Outcome]> = [
        ...REFRESH_FAULTS.map(([label, , outcome]): [string, Outcome] => [label, outcome]),
        ['connection refused', 'provider_unavailable'],
      ];
      upstream.setTtl(1);
      const logins: Array<{ browser: request.Agent; refreshToken: string }> = [];
      for (const _ of cases) {
        const browser = newBrowser();
        logins.push({ browser, refreshToken: await signIn(browser, upstream) });
      }
      upstream.setTtl(3600);
      await untilLifetime(Date.now(), 1, 1);

      // Each refresh meets its own fault, all at once (the stalls overlap).
      const faults = new Map(REFRESH_FAULTS.map(([, fault], i) => [logins[i]!.refreshToken, fault]));
      upstream.proxy.fail(upstream.tokenPath, ({ form }) => faults.get(form.get('refresh_token') ?? ''));
      const answers = await Promise.all(REFRESH_FAULTS.map((_, i) => token(logins[i]!.browser, upstream)));
      upstream.proxy.heal();
      const last = logins.at(-1)!;
      await upstream.proxy.refuse();
      answers.push(await token(last.browser, upstream));
      await upstream.proxy.accept();

      expect(Object.fromEntries(cases.map(([label], i) => [label, answers[i]]))).toEqual(
        Object.fromEntries(cases.map(([label, outcome]) => [label, failed(outcome)])),
      );
      expect(upstream.proxy.count(upstream.tokenPath)).toBe(cases.length + REFRESH_FAULTS.length);
      expect(upstream.handled().refreshes).toBe(0);

      // The provider is back: after the cooldown each session refreshes with the refresh token it
      // had (a lost or overwritten one would be refused), exactly once.
      await sleep(1100);
      const issuedBefore = upstream.issued().accessTokens.length;
      const recovered = await Promise.all(logins.map(({ browser }) => token(browser, upstream)));
      const fresh = upstream.issued().accessTokens.slice(issuedBefore);
      expect(
        recovered.map((answer) => (answer.startsWith('200 ') && fresh.includes(answer.slice(4)) ? 'fresh' : answer)),
      ).toEqual(logins.map(() => 'fresh'));
      expect(new Set(recovered).size).toBe(logins.length);
      expect(upstream.handled().refreshes).toBe(logins.length);
      expect(await Promise.all(logins.map(({ browser }) => token(browser, upstream)))).toEqual(recovered);
      expect(upstream.handled().refreshes).toBe(logins.length);
      expect(recovered.join()).not.toContain(FAULT_ACCESS_TOKEN);
    });

    it('serves the still-valid access token while its refresh fails, then refreshes once', async ({ expect, onTestFinished }) => {
      // Due at once with a skew this large (or, for a short-lived token, at half its life).
      const {
        upstream,
        reported,
        browser: newBrowser,
      } = await harness(adapter, start, onTestFinished, {
        refreshSkewSeconds: 3600,
      });
      const cases: Array<[Fault, Outcome]> = [
        [{ status: 503 }, 'provider_unavailable'],
        ['reset-mid-body', 'provider_unavailable'],
        [{ expiresIn: '"soon"' }, 'invalid_response'],
      ];
      // Expires 7 or 8 s after its login: due from 4 s on, while the logins and the refreshes take 2 s at most.
      upstream.setTtl(8);
      const logins: Array<{ browser: request.Agent; accessToken: string; refreshToken: string }> = [];
      for (const _ of cases) {
        const browser = newBrowser();
        const refreshToken = await signIn(browser, upstream);
        logins.push({ browser, refreshToken, accessToken: upstream.issued().accessTokens.at(-1) as string });
      }
      upstream.setTtl(3600);
      const faults = new Map(cases.map(([fault], i) => [logins[i]!.refreshToken, fault]));
      upstream.proxy.fail(upstream.tokenPath, ({ form }) => faults.get(form.get('refresh_token') ?? ''));
      await untilLifetime(Date.now(), 8, 0.5);

      const served = await Promise.all(logins.map(({ browser }) => token(browser, upstream)));
      expect(served).toEqual(logins.map(({ accessToken }) => `200 ${accessToken}`));
      expect(upstream.proxy.count(upstream.tokenPath)).toBe(2 * cases.length);
      expect(reported.map(({ code, status }) => `${status} ${code}`).sort()).toEqual(
        cases.map(([, outcome]) => failed(outcome)).sort(),
      );

      upstream.proxy.heal();
      await sleep(1100); // the cooldown after a failure
      const refreshed = await Promise.all(logins.map(({ browser }) => token(browser, upstream)));
      expect(upstream.handled().refreshes).toBe(cases.length);
      refreshed.forEach((answer, i) => {
        expect(answer).toMatch(/^200 /);
        expect(answer).not.toBe(`200 ${logins[i]!.accessToken}`);
        expect(upstream.issued().accessTokens).toContain(answer.slice(4));
      });
      expect(await Promise.all(logins.map(({ browser }) => token(browser, upstream)))).toEqual(refreshed);
      expect(upstream.handled().refreshes).toBe(cases.length);
    });
  });
});

// Runs alone, between the fault tests and the cooldown tests: its spy sees only its own requests,
// and the cooldown tests, whose assertions are about timing, do not share the event loop with the
// fault tests.
describe('the default timeout', () => {
  it('is 10 s per provider request, for oidc() and for the presets (read from the request, not waited for)', async ({
    expect,
    onTestFinished,
  }) => {
    const timeouts = vi.spyOn(AbortSignal, 'timeout');
    onTestFinished(() => timeouts.mockRestore());
    for (const start of [oidcProvider, pipedriveProvider]) {
      const upstream = await start();
      onTestFinished(() => upstream.close());
      const definition = upstream.definition({ timeoutSeconds: 'default' });
      expect(definition.timeoutSeconds).toBe(10);
      const app = await adapters[0]!.start(
        createOAuth({ baseUrl: BASE_URL, secret: SECRET, providers: { [upstream.name]: definition } }),
      );
      onTestFinished(() => app.close());
      const browser = request.agent(app.server);
      const callback = await consent(browser, upstream);
      timeouts.mockClear();
      await browser.get(callback).expect(302);
      // The code exchange's request carried a 10 s timeout signal.
      expect(timeouts.mock.calls.map(([ms]) => ms)).toContain(10_000);
      expect(upstream.proxy.count(upstream.tokenPath)).toBe(1);
    }
  });
});

describe.concurrent.each(COOLDOWN_ADAPTERS)('$name adapter: refresh cooldown', (adapter) => {
  it('makes one refresh request for 50 concurrent guarded requests, and one for 20 sequential ones, while the provider fails', async ({
    expect,
    onTestFinished,
  }) => {
    const { upstream, browser: newBrowser } = await harness(adapter, spareOidcProvider, onTestFinished, {
      refreshSkewSeconds: 3600,
    });
    upstream.setTtl(10);
    const busy = newBrowser();
    await signIn(busy, upstream);
    const busySince = Date.now();
    upstream.setTtl(1);
    const expired = newBrowser();
    await signIn(expired, upstream);
    upstream.setTtl(3600);
    upstream.proxy.fail(upstream.tokenPath, { status: 503, ...json({ error: 'temporarily_unavailable' }) });
    const refreshes = () => upstream.proxy.count(upstream.tokenPath) - 2; // the two code exchanges
    await untilLifetime(busySince, 10, 0.5);

    // Due, still valid: every request gets through on the old token, one refresh is tried.
    const guarded = await Promise.all(Array.from({ length: 50 }, () => busy.get('/protected').set('accept', 'application/json')));
    expect(guarded.map((res) => res.status)).toEqual(Array(50).fill(200));
    expect(refreshes()).toBe(1);

    // Expired: 503 at once, without asking the provider again.
    const statuses: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await expired.get('/protected').set('accept', 'application/json');
      statuses.push(`${res.status} ${res.body.error}`);
    }
    expect(statuses).toEqual(Array(20).fill(failed('provider_unavailable')));
    expect(refreshes()).toBe(2);
  });

  it('tries again after 1 s, then after 2 s, and starts over at 1 s once a refresh succeeds', async ({
    expect,
    onTestFinished,
  }) => {
    // Pipedrive keeps its refresh token across refreshes: the cooldown after a success is the
    // same grant's, not a new refresh token's.
    const { upstream, browser: newBrowser } = await harness(adapter, pipedriveProvider, onTestFinished);
    const attempts = () => upstream.proxy.count(upstream.tokenPath) - 1; // the code exchange
    upstream.setTtl(1);
    const browser = newBrowser();
    await signIn(browser, upstream);
    await untilLifetime(Date.now(), 1, 1);
    upstream.proxy.fail(upstream.tokenPath, { status: 503 });
    const unavailable = `503 provider_unavailable`;

    expect(await token(browser, upstream)).toBe(unavailable); // failure 1: 1 s cooldown
    expect(await token(browser, upstream)).toBe(unavailable);
    expect(attempts()).toBe(1);
    await sleep(1100);
    expect(await token(browser, upstream)).toBe(unavailable); // failure 2: 2 s cooldown
    expect(attempts()).toBe(2);
    await sleep(1100);
    expect(await token(browser, upstream)).toBe(unavailable);
    expect(attempts()).toBe(2);

    upstream.proxy.heal();
    await sleep(1000);
    const recovered = await token(browser, upstream); // tokens that are due again at once
    expect(recovered).toBe(`200 ${upstream.issued().accessTokens.at(-1)}`);
    expect(attempts()).toBe(3);
    expect(upstream.handled().refreshes).toBe(1);

    upstream.proxy.fail(upstream.tokenPath, { status: 503 });
    await untilLifetime(Date.now(), 1, 1);
    expect(await token(browser, upstream)).toBe(unavailable); // failure 1 again: 1 s, not 4 s
    expect(attempts()).toBe(4);
    await sleep(1100);
    expect(await token(browser, upstream)).toBe(unavailable);
    expect(attempts()).toBe(5);
  });
});
