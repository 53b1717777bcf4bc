/**
 * Property-based fuzzing of the routes, on Express, Koa and the web-standard handler:
 * fast-check generates requests (methods, paths under the prefix with dot segments, double and
 * encoded slashes, odd provider names; query strings of arbitrary unicode, raw bytes, repeated keys
 * and huge values; cookies random or mutated from real ones; Accept, Origin, Sec-Fetch-Site,
 * Content-Type with random bodies) and sends each to every one of them, over kept-alive
 * connections to servers listening for the whole run.
 *
 * Properties, for every request:
 * - no 5xx: no provider or store fault is injected, so the only one allowed is the one README's
 *   table documents for input: `provider_error` (502) when a callback that carried a real, unused
 *   transaction reached the provider with a code it refused (or an `error=` of its own);
 * - no unhandled rejection in the process;
 * - no secret (client secret, app secret, access, refresh and ID tokens, codes, PKCE verifiers)
 *   in the status line, headers or body of any answer, nor in any hook payload (errors with
 *   their causes' messages, JSON-serialised).
 *
 * The seed is printed at the start. Replay a failure with the seed (and, to go straight to the
 * shrunk counterexample, the path fast-check prints with it):
 *
 *   FC_SEED=123456789 npx vitest run test/fuzz.test.ts
 *   FC_SEED=123456789 FC_PATH="42:1:0" npx vitest run test/fuzz.test.ts
 */
import { Agent } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createOAuth } from '../src/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { type Reply, sendAsWritten } from './support/raw-http.js';
import {
  BASE_URL,
  CLIENT_SECRET,
  completeLogin,
  onVerifier,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

/** Each run sends its request to every adapter: 3 × RUNS generated requests. */
const RUNS = 5000;
const APP_SECRET = 'fuzz-app-secret-that-is-long-enough-0123456789';
const EVIL = 'https://evil.example';
const TX = 'oauth_tx.';
// Node's default limit for the request line and headers together.
const MAX_HEAD = 16 * 1024;

const seed = process.env.FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FC_SEED);
const path = process.env.FC_PATH;

// ---------------------------------------------------------------------------------------------
// Generated requests. Values that depend on the app (real cookies, real states, the issuer) are
// placeholders here, resolved per adapter when the request is sent.

type Placeholder = { kind: 'state' } | { kind: 'issuer' } | { kind: 'literal'; value: string };
type Encoding = 'component' | 'raw' | 'bytes';
interface Param {
  key: Placeholder;
  value: Placeholder;
  encoding: Encoding;
}
type Mutation =
  | { kind: 'none' }
  | { kind: 'flip'; at: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'append'; text: string }
  | { kind: 'empty' }
  | { kind: 'huge'; length: number }
  | { kind: 'rename'; name: string }
  | { kind: 'twice' };
interface CookieSpec {
  source: 'session' | 'transaction' | 'random';
  index: number;
  name: string;
  value: string;
  mutation: Mutation;
}
interface GeneratedRequest {
  method: string;
  path: string;
  params: Param[];
  /** A login is started on the adapter first: its cookie and state are the real ones for this request. */
  fresh: boolean;
  /** Where that login's cookie goes among the generated ones (the first of two with one name wins). */
  freshCookie: 'first' | 'last';
  cookies: CookieSpec[];
  headers: Array<[string, string]>;
  body: string | undefined;
}

const latin1 = (s: string) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
const cookieSafe = (s: string) => s.replace(/[^\x21-\x7e\x80-\xff]/g, '').replace(/;/g, '');

const shortText = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
);
const hugeText = fc
  .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }), fc.integer({ min: 1000, max: 8192 }))
  .map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length));
const trickyText = fc.constantFrom(
  '',
  '%',
  '%00',
  '%0d%0a',
  '\r\nx-injected: 1',
  '\u0000',
  '..',
  '/',
  '//evil.example',
  '/\\evil.example',
  'javascript:alert(1)',
  '/ok',
  'access_denied',
  'server_error',
  'user_denied',
  '__proto__',
  'constructor',
  '<script>alert(1)</script>',
  '\u2028',
  '\ud800',
  EVIL,
);
const literal = (text: fc.Arbitrary<string>) => text.map((value): Placeholder => ({ kind: 'literal', value }));
const value: fc.Arbitrary<Placeholder> = fc.oneof(
  { arbitrary: literal(shortText), weight: 10 },
  { arbitrary: literal(trickyText), weight: 6 },
  { arbitrary: literal(hugeText), weight: 1 },
  { arbitrary: fc.constant<Placeholder>({ kind: 'state' }), weight: 2 },
  { arbitrary: fc.constant<Placeholder>({ kind: 'issuer' }), weight: 1 },
);
const key: fc.Arbitrary<Placeholder> = fc.oneof(
  { arbitrary: literal(fc.constantFrom('code', 'state', 'iss', 'error', 'error_description', 'returnTo')), weight: 6 },
  { arbitrary: literal(fc.constantFrom('%63ode', 'STATE', 'code[]', '__proto__', 'constructor', 'returnTo ', '')), weight: 1 },
  { arbitrary: literal(shortText), weight: 1 },
);
const encoding = fc.constantFrom<Encoding>('component', 'component', 'raw', 'bytes');
const param = fc.record({ key, value, encoding });
const param_ = (k: string, v: Placeholder) =>
  fc.constant<Param>({ key: { kind: 'literal', value: k }, value: v, encoding: 'component' });
/**
 * A callback that gets past the first checks: the real state and issuer with a code (which the
 * provider refuses) or an error, then anything; now and then one of them left out.
 */
const callbackShaped = fc
  .tuple(
    fc.oneof(
      param_('code', { kind: 'literal', value: 'not-a-real-code-0123456789' }),
      fc.record({ key: literal(fc.constant('code')), value, encoding }),
      fc.record({
        key: literal(fc.constant('error')),
        value: literal(fc.oneof(fc.constantFrom('access_denied', 'user_denied', 'server_error', 'invalid_scope'), shortText)),
        encoding,
      }),
    ),
    param_('state', { kind: 'state' }),
    param_('iss', { kind: 'issuer' }),
    fc.array(param, { maxLength: 3 }),
    fc.nat({ max: 9 }),
  )
  .map(([first, state, iss, more, dice]) => [first, state, iss, ...more].filter((_, i) => dice > 2 || i !== dice));
const anyParams = fc.array(param, { maxLength: 6 });

/** Any text as a path segment: percent-encoded as UTF-8, sent raw where node:http allows, or as bytes (invalid UTF-8). */
const anySegment = fc
  .tuple(shortText, fc.constantFrom('component', 'raw', 'bytes'))
  .map(([text, how]) => (how === 'component' ? encodeBytes(text) : how === 'raw' ? encodeRaw(text) : encodeLowBytes(text)));
const segment = fc.oneof(
  { arbitrary: fc.constantFrom('op', 'other'), weight: 4 },
  {
    arbitrary: fc.constantFrom(
      'OP',
      'nope',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      '%6Fp',
      'op%00',
      '%2e%2e',
      '..',
      '.',
      '',
      '%',
      '%ZZ',
      '%E0%A4%A',
      '%C0%AF',
      'op%2F',
    ),
    weight: 2,
  },
  { arbitrary: anySegment, weight: 1 },
);
const routeAction = fc.constantFrom('login', 'callback', 'logout');
const strangeAction = fc.oneof(
  fc.constantFrom('LOGIN', 'login/', 'callback/..', 'logout;x', 'login%2F', '%6Cogin', '__proto__', '', '%'),
  anySegment,
);
/** The methods each route answers, most of the time; any other now and then. */
const ROUTE_METHOD: Record<string, string> = { login: 'GET', callback: 'GET', logout: 'POST' };
const anyMethod = fc.oneof(
  { arbitrary: fc.constantFrom('GET', 'POST'), weight: 4 },
  { arbitrary: fc.constantFrom('HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), weight: 3 },
  { arbitrary: fc.constantFrom('TRACE', 'PROPFIND', 'FOO', 'get'), weight: 1 },
);
const pathTrick = fc.constantFrom(
  '/auth/op/../op/',
  '/auth//op/',
  '/auth/op//',
  '/auth/%2e%2e/op/',
  '//auth/op/',
  '/AUTH/op/',
  '/auth/./op/',
);
/** A path and a method: mostly the routes themselves with their own method, then tricks around them. */
const target = fc.oneof(
  {
    arbitrary: fc.tuple(segment, routeAction, fc.nat({ max: 9 }), anyMethod).map(([provider, act, dice, other]) => ({
      path: `/auth/${provider}/${act}`,
      method: dice < 8 ? (ROUTE_METHOD[act] ?? 'GET') : other,
    })),
    weight: 12,
  },
  {
    arbitrary: fc.record({ path: fc.tuple(segment, strangeAction).map(([p, a]) => `/auth/${p}/${a}`), method: anyMethod }),
    weight: 2,
  },
  {
    arbitrary: fc.tuple(pathTrick, routeAction, anyMethod).map(([p, a, m]) => ({ path: p + a, method: m })),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      path: fc.array(segment, { maxLength: 4 }).map((segments) => `/auth/${segments.join('/')}`),
      method: anyMethod,
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      path: fc.constantFrom('/protected', '/protected', '/plain', '/auth', '/auth/', '/protected/../auth/op/login'),
      method: fc.oneof({ arbitrary: fc.constant('GET'), weight: 4 }, { arbitrary: anyMethod, weight: 1 }),
    }),
    weight: 3,
  },
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.constant<Mutation>({ kind: 'none' }), weight: 12 },
  { arbitrary: fc.nat().map((at): Mutation => ({ kind: 'flip', at })), weight: 4 },
  { arbitrary: fc.nat().map((keep): Mutation => ({ kind: 'truncate', keep })), weight: 3 },
  { arbitrary: shortText.map((text): Mutation => ({ kind: 'append', text })), weight: 1 },
  { arbitrary: fc.constant<Mutation>({ kind: 'empty' }), weight: 1 },
  { arbitrary: fc.integer({ min: 3000, max: 5000 }).map((length): Mutation => ({ kind: 'huge', length })), weight: 1 },
  {
    arbitrary: fc
      .constantFrom(
        'oauth_session-op',
        'oauth_session-op.0',
        'oauth_session-op.1',
        'oauth_session',
        `${TX}0`,
        `${TX}4`,
        `${TX}x`,
        '__proto__',
      )
      .map((name): Mutation => ({ kind: 'rename', name })),
    weight: 1,
  },
  { arbitrary: fc.constant<Mutation>({ kind: 'twice' }), weight: 1 },
);
const cookie: fc.Arbitrary<CookieSpec> = fc.record({
  source: fc.constantFrom('session', 'session', 'transaction', 'transaction', 'random'),
  index: fc.nat(),
  name: fc.oneof(
    fc.constantFrom(
      'oauth_session-op',
      'oauth_session-op.0',
      'oauth_session',
      `${TX}0`,
      `${TX}1`,
      `${TX}2`,
      `${TX}3`,
      `${TX}4`,
      '__proto__',
      'constructor',
    ),
    fc.string({ minLength: 1, maxLength: 12 }),
  ),
  value: shortText,
  mutation,
});

/** A header absent about half the time, else a likely value, else anything. */
const header = (name: string, likely: fc.Arbitrary<string>) =>
  fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 4 },
    { arbitrary: likely.map((v): [string, string] => [name, v]), weight: 3 },
    { arbitrary: shortText.map((v): [string, string] => [name, v]), weight: 1 },
  );
const headers = fc
  .tuple(
    header(
      'accept',
      fc.constantFrom(
        'text/html',
        'application/json',
        'text/html;q=0',
        'text/html;q=0, application/json',
        '*/*',
        'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        'application/json;q=0.1, text/html',
        '',
      ),
    ),
    header('origin', fc.constantFrom(BASE_URL, BASE_URL, EVIL, 'null', 'http://127.0.0.1:4000', '')),
    header('sec-fetch-site', fc.constantFrom('same-origin', 'same-origin', 'same-site', 'cross-site', 'none', 'CROSS-SITE')),
    header('x-forwarded-host', fc.constantFrom('evil.example', '127.0.0.1:3999')),
    header('x-http-method-override', fc.constantFrom('GET', 'POST', 'DELETE')),
  )
  .map((list) => list.filter((h): h is [string, string] => h !== undefined).map(([n, v]): [string, string] => [n, latin1(v)]));
const body = fc.option(
  fc.tuple(
    fc.oneof(
      fc.constantFrom(
        'application/x-www-form-urlencoded',
        'application/x-www-form-urlencoded; charset=latin1',
        'application/json',
        'text/plain',
        'multipart/form-data; boundary=x',
        '',
      ),
      shortText,
    ),
    fc.oneof(
      fc
        .array(fc.tuple(fc.constantFrom('returnTo', 'code', 'state', 'x'), fc.oneof(shortText, trickyText)), { maxLength: 4 })
        .map((pairs) => new URLSearchParams(pairs).toString()),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.json(),
      hugeText,
    ),
  ),
  { nil: undefined },
);

const generatedRequest: fc.Arbitrary<GeneratedRequest> = fc
  .record({
    target,
    anyParams,
    callbackShaped,
    dice: fc.nat({ max: 9 }),
    freshCookie: fc.constantFrom<GeneratedRequest['freshCookie']>('first', 'first', 'first', 'last'),
    cookies: fc.array(cookie, { maxLength: 4 }),
    headers,
    body,
  })
  .map(({ target: { path, method }, anyParams: generic, callbackShaped: shaped, dice, body: sent, headers: list, ...rest }) => {
    // Callbacks mostly come back for a login really started, with the parameters that get them furthest.
    const callback = path.includes('callback');
    return {
      ...rest,
      method,
      path,
      params: callback && dice < 6 ? shaped : generic,
      fresh: callback ? dice < 8 : dice < 1,
      headers: sent === undefined ? list : [...list, ['content-type', latin1(sent[0])] as [string, string]],
      body: sent?.[1],
    };
  });

// ---------------------------------------------------------------------------------------------
// Rendering a generated request for one adapter.

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Percent-encodes the UTF-8 bytes of everything but unreserved characters (a lone surrogate becomes U+FFFD). */
function encodeBytes(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((b) => (UNRESERVED.test(String.fromCharCode(b)) ? String.fromCharCode(b) : pct(b)))
    .join('');
}
const pct = (b: number) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`;

/** Keeps what node:http can send raw (including stray `%`, `&`, `=` and latin-1), encodes the rest. */
function encodeRaw(text: string): string {
  return [...text].map((c) => (/[\x21-\x7e\x80-\xff]/.test(c) && c !== '#' ? c : encodeBytes(c))).join('');
}

/** Arbitrary bytes, invalid UTF-8 included: the text's code units taken as bytes. */
function encodeLowBytes(text: string): string {
  return [...text].map((c) => pct(c.charCodeAt(0) & 0xff)).join('');
}

interface Material {
  /** A signed-in session for every request but logouts, which would end it. */
  session: string;
  /** Another, for logouts: the first one that goes through ends it. */
  disposable: string;
  transactions: Array<{ name: string; value: string; state: string }>;
}

function resolve(p: Placeholder, state: string, issuer: string): string {
  return p.kind === 'state' ? state : p.kind === 'issuer' ? issuer : p.value;
}

function render(
  req: GeneratedRequest,
  material: Material,
  fresh: { name: string; value: string; state: string } | undefined,
  issuer: string,
) {
  const transactions = fresh ? [fresh, ...material.transactions] : material.transactions;
  const state = transactions[0]?.state ?? '';
  const encode = { component: encodeBytes, raw: encodeRaw, bytes: encodeLowBytes };
  const query = req.params
    .map((p) => `${encode[p.encoding](resolve(p.key, state, issuer))}=${encode[p.encoding](resolve(p.value, state, issuer))}`)
    .join('&');
  const pairs: string[] = [];
  for (const c of req.cookies) {
    const real =
      c.source === 'session'
        ? { name: 'oauth_session-op', value: req.path.includes('logout') ? material.disposable : material.session }
        : c.source === 'transaction'
          ? transactions[c.index % transactions.length]
          : { name: c.name, value: c.value };
    if (!real) continue;
    let name = cookieSafe(real.name) || 'x';
    let text = real.value;
    const m = c.mutation;
    if (m.kind === 'flip' && text.length > 0) {
      const at = m.at % text.length;
      text = text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
    } else if (m.kind === 'truncate') text = text.slice(0, m.keep % (text.length + 1));
    else if (m.kind === 'append') text += m.text;
    else if (m.kind === 'empty') text = '';
    else if (m.kind === 'huge') text = (text || 'A').repeat(Math.ceil(m.length / Math.max(1, text.length))).slice(0, m.length);
    else if (m.kind === 'rename') name = m.name;
    text = cookieSafe(text);
    pairs.push(`${name}=${text}`);
    if (m.kind === 'twice') pairs.unshift(`${name}=${text}`);
  }
  // The browser that just started the fresh login holds its cookie.
  if (fresh && req.freshCookie === 'first') pairs.unshift(`${fresh.name}=${fresh.value}`);
  if (fresh && req.freshCookie === 'last') pairs.push(`${fresh.name}=${fresh.value}`);
  return { path: query === '' ? req.path : `${req.path}?${query}`, cookie: pairs.join('; ') };
}

// ---------------------------------------------------------------------------------------------
// The wire.

function send(
  app: RunningApp,
  agent: Agent,
  options: { method: string; path: string; headers: Array<[string, string]>; body?: string | undefined },
): Promise<Reply> {
  return sendAsWritten(app.url, { ...options, headers: options.headers.flat(), timeoutMs: 15_000 }, agent);
}

// ---------------------------------------------------------------------------------------------
// Secrets and hook payloads.

/** JSON of a hook payload, with every error's name, message, code and cause chain (causes are not enumerable). */
function serialise(payload: unknown): string {
  const seen = new WeakSet<object>();
  const plain = (value: unknown, depth: number): unknown => {
    if (depth > 8) return '[deep]';
    if (value instanceof Error) {
      if (seen.has(value)) return '[circular]';
      seen.add(value);
      const own = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v, depth + 1)]));
      return { ...own, name: value.name, message: value.message, stack: value.stack, cause: plain(value.cause, depth + 1) };
    }
    if (value && typeof value === 'object') {
      if (seen.has(value)) return '[circular]';
      seen.add(value);
      if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v, depth + 1)]));
    }
    return value;
  };
  try {
    return JSON.stringify(plain(payload, 0)) ?? '';
  } catch (err) {
    return `unserialisable: ${String(err)}`;
  }
}

let op: TestServer;
const codes: string[] = [];
/** PKCE verifiers, as the provider received them (43 base64url characters each). */
const verifiers = new Set<string>();

function findSecret(text: string): string | undefined {
  const { accessTokens, refreshTokens, idTokens } = op.issued;
  for (const secret of [CLIENT_SECRET, APP_SECRET, ...accessTokens, ...refreshTokens, ...idTokens, ...codes]) {
    if (text.includes(secret)) return secret;
  }
  // Verifiers are many: look them up in every base64url run long enough to hold one.
  for (const run of text.match(/[A-Za-z0-9_-]{43,}/g) ?? []) {
    for (let i = 0; i + 43 <= run.length; i++) {
      const window = run.slice(i, i + 43);
      if (verifiers.has(window)) return window;
    }
  }
  return undefined;
}

/** Where a secret was found, the secret itself elided. */
function mask(text: string, secret: string): string {
  const at = text.indexOf(secret);
  return `...${text.slice(Math.max(0, at - 150), at)}[secret ${secret.slice(0, 6)}...]${text.slice(at + secret.length, at + secret.length + 100)}...`;
}

// ---------------------------------------------------------------------------------------------
// The run.

interface Target {
  name: string;
  app: RunningApp;
  agent: Agent;
  material: Material;
  hooks: string[];
  sent: number;
}

const targets: Target[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  op = await startAuthorizationServer(['op', 'other']);
  onVerifier(op, (verifier) => verifiers.add(verifier));
  // The newest major of each framework, and the web-standard handler (Hono adds nothing under it).
  // Not Fastify yet: after some of its own 4xx answers it drops a kept-alive connection without
  // `Connection: close`, and the next request on it hangs up (a harness matter, still to settle).
  for (const adapter of adapters.filter((a) => ['express', 'koa', 'fetch'].includes(a.name))) {
    const hooks: string[] = [];
    const record = (hook: string) => (payload: unknown) => {
      hooks.push(`${hook} ${serialise(payload)}`);
    };
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: APP_SECRET,
      providers: { op: testProvider(op), other: testProvider(op) },
      hooks: {
        onLogin: record('onLogin'),
        onRefresh: record('onRefresh'),
        onLogout: record('onLogout'),
        onError: record('onError'),
      },
    });
    const app = await adapter.start(oauth);
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    targets.push({ name: adapter.name, app, agent, material: await material(app, agent), hooks, sent: 0 });
  }
  process.on('unhandledRejection', onUnhandled);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  for (const target of targets) {
    target.agent.destroy();
    await target.app.close();
  }
  await op?.close();
});

/** Real signed-in session cookies and a few real logins in flight, to mutate. */
async function material(app: RunningApp, agent: Agent): Promise<Material> {
  const [session, disposable] = [await signIn(app, agent), await signIn(app, agent)];
  const transactions = await Promise.all([startLogin(app, agent), startLogin(app, agent), startLogin(app, agent, 'other')]);
  return { session, disposable, transactions };
}

async function signIn(app: RunningApp, agent: Agent): Promise<string> {
  const login = await startLogin(app, agent);
  const back = await completeLogin(login.location);
  codes.push(back.searchParams.get('code') ?? '');
  const done = await send(app, agent, {
    method: 'GET',
    path: back.pathname + back.search,
    headers: [['cookie', `${login.name}=${login.value}`]],
  });
  expect(done.status).toBe(302);
  const session = cookiesOf(done).find(([name]) => name === 'oauth_session-op')?.[1];
  if (!session) throw new Error('no session cookie after a login');
  return session;
}

function cookiesOf(reply: Reply): Array<[string, string]> {
  return (reply.headers['set-cookie'] ?? []).map((line) => {
    const pair = line.split(';')[0] ?? '';
    const eq = pair.indexOf('=');
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
}

/** The provider a path names, when it is one of the app's. */
function providerOf(requestPath: string): 'op' | 'other' | undefined {
  const segment = /^\/auth\/([^/]+)\//.exec(requestPath)?.[1] ?? '';
  try {
    const name = decodeURIComponent(segment);
    return name === 'op' || name === 'other' ? name : undefined;
  } catch {
    return undefined;
  }
}

async function startLogin(app: RunningApp, agent: Agent, provider = 'op') {
  const res = await send(app, agent, { method: 'GET', path: `/auth/${provider}/login`, headers: [] });
  expect(res.status).toBe(302);
  const location = res.headers.location ?? '';
  const state = new URL(location).searchParams.get('state') ?? '';
  const written = cookiesOf(res).find(([name, value]) => name.startsWith(TX) && value !== '');
  if (!written) throw new Error('no transaction cookie after a login');
  return { name: written[0], value: written[1], state, location };
}

it(`answers ${3 * RUNS} generated requests without a 5xx, an unhandled rejection or a secret`, { timeout: 180_000 }, async () => {
  console.log(`fuzz seed ${seed}: replay with FC_SEED=${seed} npx vitest run test/fuzz.test.ts`);
  expect(targets.map((t) => t.name)).toEqual(['express', 'koa', 'fetch']);

  await fc.assert(
    fc.asyncProperty(generatedRequest, async (req) => {
      // Settled, not all: a run must not end (and the next begin) while one adapter's request is in flight.
      const outcomes = await Promise.allSettled(
        targets.map(async (target) => {
          const hooksBefore = target.hooks.length;
          const unhandledBefore = unhandled.length;
          const fresh = req.fresh ? await startLogin(target.app, target.agent, providerOf(req.path) ?? 'op') : undefined;
          const { path: requestPath, cookie: cookieHeader } = render(req, target.material, fresh, op.issuer);
          const headers: Array<[string, string]> = [...req.headers];
          if (cookieHeader !== '') headers.push(['cookie', cookieHeader]);
          const hasBody = req.body !== undefined && req.method !== 'GET' && req.method !== 'HEAD';
          const head = requestPath.length + headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
          const where = `${target.name}: ${req.method} ${requestPath.slice(0, 300)}`;
          let reply: Reply;
          try {
            target.sent++;
            reply = await send(target.app, target.agent, {
              method: req.method,
              path: requestPath,
              headers,
              body: hasBody ? req.body : undefined,
            });
          } catch (err) {
            // Node may close the connection on a head over its limit before the answer is read.
            if (head > MAX_HEAD - 512) return;
            throw new Error(`${where}: no answer (${String(err)})`, { cause: err });
          }

          if (reply.status >= 500) {
            // README: a refused code exchange, or the provider's own error=, is provider_error (502).
            // Only a callback carrying the state of a real login that was never used gets that far.
            const resolved = URL.parse(requestPath, 'http://x')?.pathname ?? '';
            const callback = /^\/auth\/[^/]+\/callback$/.test(resolved) && providerOf(resolved) !== undefined;
            const realState = req.params.some((p) => p.value.kind === 'state');
            const code = /"error":"([a-z_]+)"|<small>([a-z_]+)<\/small>/.exec(reply.body);
            const documented = reply.status === 502 && callback && realState && (code?.[1] ?? code?.[2]) === 'provider_error';
            if (!documented) throw new Error(`${where}: ${reply.status} ${reply.body.slice(0, 300)}`);
          }
          const text = [`${reply.status} ${reply.statusMessage}`, ...reply.rawHeaders, reply.body].join('\n');
          const leaked = findSecret(text);
          if (leaked !== undefined) throw new Error(`${where}: a secret in the answer: ${mask(text, leaked)}`);
          for (const payload of target.hooks.slice(hooksBefore)) {
            const secret = findSecret(payload);
            if (secret !== undefined) throw new Error(`${where}: a secret in a hook payload: ${mask(payload, secret)}`);
          }
          if (unhandled.length > unhandledBefore) throw new Error(`${where}: unhandled rejection ${String(unhandled.at(-1))}`);
        }),
      );
      for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
    }),
    { seed, path, numRuns: RUNS },
  );

  // Let late hooks and rejections land, then look at everything once more.
  await new Promise((r) => setTimeout(r, 50));
  expect(unhandled).toEqual([]);
  for (const target of targets) {
    expect(target.sent, `${target.name} requests`).toBeGreaterThanOrEqual(RUNS);
    expect(findSecret(target.hooks.join('\n')), `${target.name} hook payloads`).toBeUndefined();
  }
  expect(targets.reduce((n, t) => n + t.sent, 0)).toBeGreaterThanOrEqual(10_000);
  // Secrets of every kind were there to find: the sign-ins' tokens and codes, the exchanges' verifiers.
  expect(codes.length).toBeGreaterThanOrEqual(4);
  expect(op.issued.refreshTokens.length).toBeGreaterThanOrEqual(4);
  expect(verifiers.size).toBeGreaterThan(4);
  // The hooks did fire (errors at least), so their payloads were looked at.
  expect(targets.every((t) => t.hooks.some((h) => h.startsWith('onError')))).toBe(true);
});
