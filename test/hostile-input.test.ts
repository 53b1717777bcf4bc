/**
 * Hostile input, table-driven: tampered, truncated, oversized, foreign and duplicated cookies,
 * transactions of another provider, hostile callback parameters, wrong methods, path tricks,
 * returnTo variants, header injection, concurrent logins and cross-site logouts.
 *
 * Every row runs on Express 5 and Koa 3 with the cookie store and a server-side store, and on
 * Express 4 and Koa 2 with the cookie store. Each one asserts three things: its status and error
 * code (README's error table; never a 5xx but where that table says so), that no secret (client
 * secret, app secret, any access, refresh or ID token, code or PKCE verifier issued in the file)
 * appears anywhere in an answer of the row (status line, headers, body), and that a browser
 * already signed in still gets the very same token afterwards.
 *
 * Requests go out byte for byte as written (node:http, or a raw socket for what node:http refuses
 * to send): supertest and fetch would normalise paths and headers before the server saw them.
 */
import { randomBytes } from 'node:crypto';
import { Agent, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { sealData } from 'iron-session';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type OAuthConfig } from '../src/index.js';
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

const APP_SECRET = 'hostile-input-app-secret-0123456789-abcdef';
const OTHER_SECRET = 'some-other-app-secret-9876543210-zyxwvuts';
const COOKIE = 'oauth_session-op'; // the provider op's session cookie, over http on 127.0.0.1
const TX = 'oauth_tx.';
/** README: "a sixth login in flight for one provider drops the oldest". */
const MAX_TX_COOKIES = 5;
const EVIL = 'https://evil.example';
const isTransaction = (name: string) => name.startsWith(TX) || name.startsWith(`__Secure-${TX}`);

// ---------------------------------------------------------------------------------------------
// A browser: a cookie jar that sends what matches the path, and applies every Set-Cookie.

interface Req {
  method?: string;
  /** Sent as is: no normalisation of dot segments, slashes or percent-encoding. */
  path: string;
  /** Headers to add; `accept` defaults to application/json. Repeat a header with an array. */
  headers?: Readonly<Record<string, string | readonly string[]>>;
  /** Rewrites the Cookie header the jar would send (planting, duplicating, tampering). */
  cookie?: (jar: string) => string;
  body?: string;
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

class Browser {
  readonly #cookies = new Map<string, StoredCookie>();
  constructor(readonly send: (browser: Browser, req: Req) => Promise<Reply>) {}

  /** What a browser sends for `path`: the longest cookie paths first, as RFC 6265 asks. */
  cookieHeader(path: string): string {
    const pathname = path.split('?')[0] ?? path;
    return [...this.#cookies.values()]
      .filter((c) => c.path === '/' || pathname === c.path.replace(/\/$/, '') || pathname.startsWith(c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  set(name: string, value: string, path = '/'): void {
    this.#cookies.set(`${path}\n${name}`, { name, value, path });
  }

  delete(cookie: StoredCookie): void {
    this.#cookies.delete(`${cookie.path}\n${cookie.name}`);
  }

  get(name: string): StoredCookie | undefined {
    return [...this.#cookies.values()].find((c) => c.name === name);
  }

  all(): StoredCookie[] {
    return [...this.#cookies.values()];
  }

  transactions(): StoredCookie[] {
    return this.all().filter((c) => isTransaction(c.name));
  }

  apply(reply: Reply): void {
    const lines = reply.headers['set-cookie'] ?? [];
    for (const line of lines) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) ?? '/';
      const gone =
        value === '' ||
        attributes.some((a) => /^max-age=(0|-)/i.test(a)) ||
        attributes.some((a) => /^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now());
      if (gone) this.#cookies.delete(`${path}\n${name}`);
      else this.set(name, value, path);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The wire.

const agent = new Agent({ keepAlive: false });

function send(base: string, req: Req, cookie: string): Promise<Reply> {
  const headers: string[] = [];
  const given = Object.entries(req.headers ?? {});
  if (!given.some(([name]) => name.toLowerCase() === 'accept')) headers.push('Accept', 'application/json');
  for (const [name, value] of given) for (const v of [value].flat()) headers.push(name, v);
  if (cookie !== '') headers.push('Cookie', cookie);
  return sendAsWritten(base, { method: req.method ?? 'GET', path: req.path, headers, body: req.body, timeoutMs: 10_000 }, agent);
}

/**
 * Bytes node:http would refuse to send (CR, LF or NUL in the request target). The socket stays
 * open for writing until the answer is complete: a half-closed connection gets no answer at all.
 */
function sendRaw(base: string, head: string): Promise<Reply> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let received = Buffer.alloc(0);
    const parse = (): Reply | undefined => {
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const rawHeaders = lines.flatMap((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
      const headers: IncomingHttpHeaders = {};
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = (rawHeaders[i] ?? '').toLowerCase();
        const value = rawHeaders[i + 1] ?? '';
        if (name === 'set-cookie') headers['set-cookie'] = [...(headers['set-cookie'] ?? []), value];
        else headers[name] = value;
      }
      const body = received.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
      const length = Number(headers['content-length'] ?? 0);
      if (body.length < length) return undefined;
      if (headers['transfer-encoding'] === 'chunked' && !body.toString('latin1').endsWith('0\r\n\r\n')) return undefined;
      const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
      return {
        status: Number(match?.[1] ?? 0),
        statusMessage: match?.[2] ?? '',
        headers,
        rawHeaders,
        body: body.toString('utf8'),
      };
    };
    const done = (reply: Reply | undefined) => {
      socket.destroy();
      if (reply) resolve(reply);
      else reject(new Error(`no complete answer to ${JSON.stringify(head.slice(0, 80))}`));
    };
    socket.setTimeout(10_000, () => done(undefined));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const reply = parse();
      if (reply) done(reply);
    });
    socket.on('end', () => done(parse()));
    socket.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// What a row gets.

interface Pending {
  browser: Browser;
  provider: string;
  state: string;
  cookie: StoredCookie;
  location: string;
}

interface Ctx {
  /** The browser signed in before the row; its token must be the same afterwards. */
  victim: Browser;
  /** A browser with no cookie at all. */
  stranger(): Browser;
  /** Starts a login in `browser` (its transaction cookie lands in the jar). */
  pending(browser: Browser, options?: { provider?: string; returnTo?: string }): Promise<Pending>;
  /** Completes a pending login at the provider; the callback URL (path and query) with a real code. */
  authorize(pending: Pending): Promise<URL>;
  /** Bytes as they are, on a fresh socket. */
  raw(head: string): Promise<Reply>;
  /** Authorization codes the provider has exchanged so far (none must be, for a refused callback). */
  exchanges(): number;
  issuer: string;
}

interface Row {
  name: string;
  request: (ctx: Ctx) => Promise<Reply>;
  expect: {
    status: number;
    /** The OAuthError code of the answer; undefined when it is not one (a redirect, a framework 404). */
    code: string | undefined;
    /** The exact Location, when there must be one. */
    location?: string;
    /** Strings the row put in the request that must not come back anywhere in the answer. */
    absent?: string[];
  };
  /**
   * What an adapter answers instead, where its framework reads the request target otherwise before
   * any handler runs: a web-standard runtime resolves it into a URL (an absolute-form target is then
   * its path), Fastify refuses one it cannot decode (400).
   */
  on?: Readonly<Record<string, Row['expect']>>;
}

const callback = (params: string, provider = 'op') => `/auth/${provider}/callback?${params}`;
const q = (pairs: Array<[string, string]>) =>
  pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

/** One base64url character changed in the middle: what a bit flip or a forger gives. */
function flip(value: string): string {
  const i = Math.floor(value.length / 2);
  const c = value[i] === 'A' ? 'B' : 'A';
  return value.slice(0, i) + c + value.slice(i + 1);
}

/** A transaction as this library seals it, but sealed with another app's secret. */
async function foreignTransaction(state: string, provider = 'op'): Promise<string> {
  const data = { provider, state, codeVerifier: randomBytes(32).toString('base64url'), returnTo: '/', createdAt: Date.now() };
  return sealData({ exp: Math.floor(Date.now() / 1000) + 600, data }, { password: OTHER_SECRET, ttl: 660 });
}

/** A session (cookie-store shape) sealed with another app's secret. */
async function foreignSession(): Promise<string> {
  const tokens = { op: { accessToken: 'forged-access-token', tokenType: 'bearer', extras: {} } };
  return sealData({ exp: Math.floor(Date.now() / 1000) + 3600, data: { tokens } }, { password: OTHER_SECRET, ttl: 3660 });
}

const randomState = () => randomBytes(32).toString('base64url');
const get = (browser: Browser, path: string, headers?: Req['headers']) => browser.send(browser, { path, headers });
const logout = (browser: Browser, path = '/auth/op/logout', headers?: Req['headers']) =>
  browser.send(browser, { method: 'POST', path, headers });
/** A logout in a browser that is not signed in: nothing to revoke, so only the redirect's target is at stake. */
const logoutTo = (ctx: Ctx, returnTo: string) =>
  logout(ctx.stranger(), `/auth/op/logout?${q([['returnTo', returnTo]])}`, { accept: 'text/html' });

// ---------------------------------------------------------------------------------------------
// The table.

const INJECTED = 'x-injected';
const rows: Row[] = [
  // Cookies: tampered, truncated, oversized, foreign, duplicated, of another provider.
  {
    name: 'transaction cookie tampered (one character changed)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const back = await ctx.authorize(p);
      p.browser.set(p.cookie.name, flip(p.cookie.value), p.cookie.path);
      const res = await get(p.browser, back.pathname + back.search);
      expect(ctx.exchanges()).toBe(0);
      return res;
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie truncated to half',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      p.browser.set(p.cookie.name, p.cookie.value.slice(0, p.cookie.value.length / 2), p.cookie.path);
      return get(
        p.browser,
        callback(
          q([
            ['code', 'abc'],
            ['state', p.state],
          ]),
        ),
      );
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie empty',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return p.browser.send(p.browser, {
        path: callback(
          q([
            ['code', 'abc'],
            ['state', p.state],
          ]),
        ),
        cookie: (jar) => `${p.cookie.name}=; ${jar}`,
      });
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie oversized (12 KB of garbage in its place)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const genuine = `${p.cookie.name}=${p.cookie.value}`;
      return p.browser.send(p.browser, {
        path: callback(
          q([
            ['code', 'abc'],
            ['state', p.state],
          ]),
        ),
        cookie: (jar) => jar.replace(genuine, `${p.cookie.name}=${'A'.repeat(12_000)}`),
      });
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'Cookie header over 16 KB (refused by Node before the app)',
    request: (ctx) => ctx.victim.send(ctx.victim, { path: '/protected', cookie: (jar) => `${jar}; big=${'x'.repeat(17_000)}` }),
    expect: { status: 431, code: undefined },
  },
  {
    name: 'transaction cookie foreign (sealed with another secret)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      p.browser.set(p.cookie.name, await foreignTransaction(p.state), p.cookie.path);
      return get(
        p.browser,
        callback(
          q([
            ['code', 'abc'],
            ['state', p.state],
          ]),
        ),
      );
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie foreign, beside a real code for its state',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger());
      const back = await ctx.authorize(p);
      p.browser.set(p.cookie.name, await foreignTransaction(p.state), p.cookie.path);
      const res = await get(p.browser, back.pathname + back.search);
      expect(ctx.exchanges()).toBe(0);
      return res;
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie duplicated, forged copy first',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger());
      const back = await ctx.authorize(p);
      const forged = await foreignTransaction(p.state);
      return p.browser.send(p.browser, {
        path: back.pathname + back.search,
        cookie: (jar) => `${p.cookie.name}=${forged}; ${jar}`,
      });
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie duplicated, genuine copy first (the login completes)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger(), { returnTo: '/dup' });
      const back = await ctx.authorize(p);
      const forged = await foreignTransaction(p.state);
      return p.browser.send(p.browser, {
        path: back.pathname + back.search,
        cookie: (jar) => `${jar}; ${p.cookie.name}=${forged}`,
      });
    },
    expect: { status: 302, code: undefined, location: '/dup' },
  },
  {
    name: 'transaction cookie of another provider, planted for the callback of op',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger(), { provider: 'other' });
      return p.browser.send(p.browser, {
        path: callback(
          q([
            ['code', 'abc'],
            ['state', p.state],
          ]),
        ),
        cookie: (jar) => `${jar}; ${p.cookie.name}=${p.cookie.value}`,
      });
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: "another provider's whole callback (real code, state, cookie) replayed at op's callback",
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger(), { provider: 'other' });
      const back = await ctx.authorize(p);
      const res = await p.browser.send(p.browser, {
        path: `/auth/op/callback${back.search}`,
        cookie: (jar) => `${jar}; ${p.cookie.name}=${p.cookie.value}`,
      });
      expect(ctx.exchanges()).toBe(0);
      return res;
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie replayed after its login completed',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger());
      const back = await ctx.authorize(p);
      const cookie = `${p.cookie.name}=${p.cookie.value}`;
      const first = await p.browser.send(p.browser, { path: back.pathname + back.search, cookie: () => cookie });
      expect(first.status).toBe(302);
      return p.browser.send(p.browser, { path: back.pathname + back.search, cookie: () => cookie });
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'twenty planted transaction-like cookies, then a whole login',
    request: async (ctx) => {
      const browser = ctx.stranger();
      for (let i = 0; i < 20; i++) browser.set(TX + (i < 10 ? String(i) : randomState()), 'junk', '/auth/op/');
      const p = await ctx.pending(browser, { returnTo: '/planted' });
      const back = await ctx.authorize(p);
      return get(browser, back.pathname + back.search);
    },
    expect: { status: 302, code: undefined, location: '/planted' },
  },
  {
    name: 'every transaction cookie tampered in place, then a whole login',
    request: async (ctx) => {
      const browser = ctx.stranger();
      for (let i = 0; i < MAX_TX_COOKIES + 2; i++) await ctx.pending(browser);
      for (const c of browser.transactions()) browser.set(c.name, flip(c.value), c.path);
      const p = await ctx.pending(browser, { returnTo: '/tampered' });
      expect(browser.transactions().length).toBeLessThanOrEqual(MAX_TX_COOKIES);
      const back = await ctx.authorize(p);
      return get(browser, back.pathname + back.search);
    },
    expect: { status: 302, code: undefined, location: '/tampered' },
  },
  {
    name: 'session cookie presented as a transaction cookie (sealed by this app, for another purpose)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const session = ctx.victim.get(COOKIE)?.value ?? '';
      return p.browser.send(p.browser, {
        path: callback(
          q([
            ['code', 'abc'],
            ['state', p.state],
            ['iss', ctx.issuer],
          ]),
        ),
        cookie: (jar) => `${p.cookie.name}=${session}; ${jar}`,
      });
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'transaction cookie presented as the session cookie (sealed by this app, for another purpose)',
    request: async (ctx) => {
      const s = ctx.stranger();
      const p = await ctx.pending(s);
      s.set(COOKIE, p.cookie.value);
      return get(s, '/protected');
    },
    expect: { status: 401, code: 'not_connected' },
  },
  {
    name: 'session cookie tampered (one character changed)',
    request: (ctx) => {
      const s = ctx.stranger();
      s.set(COOKIE, flip(ctx.victim.get(COOKIE)?.value ?? ''));
      return get(s, '/protected');
    },
    expect: { status: 401, code: 'not_connected' },
  },
  {
    name: 'session cookie truncated',
    request: (ctx) => {
      const s = ctx.stranger();
      const value = ctx.victim.get(COOKIE)?.value ?? '';
      s.set(COOKIE, value.slice(0, value.length - 10));
      return get(s, '/protected');
    },
    expect: { status: 401, code: 'not_connected' },
  },
  {
    name: 'session cookie foreign (sealed with another secret)',
    request: async (ctx) => {
      const s = ctx.stranger();
      s.set(COOKIE, await foreignSession());
      return get(s, '/protected');
    },
    expect: { status: 401, code: 'not_connected' },
  },
  {
    name: 'session cookie as forged chunks',
    request: async (ctx) => {
      const s = ctx.stranger();
      const forged = await foreignSession();
      s.set(`${COOKIE}.0`, forged.slice(0, 100));
      s.set(`${COOKIE}.1`, forged.slice(100));
      return get(s, '/protected');
    },
    expect: { status: 401, code: 'not_connected' },
  },
  {
    name: 'session cookie duplicated, genuine copy first',
    request: async (ctx) => {
      const forged = await foreignSession();
      return ctx.victim.send(ctx.victim, { path: '/protected', cookie: (jar) => `${jar}; ${COOKIE}=${forged}` });
    },
    expect: { status: 200, code: undefined },
  },
  {
    name: 'session cookie duplicated, forged copy first (refused, and the real one is not deleted)',
    request: async (ctx) => {
      const forged = await foreignSession();
      return ctx.victim.send(ctx.victim, { path: '/protected', cookie: (jar) => `${COOKIE}=${forged}; ${jar}` });
    },
    expect: { status: 401, code: 'not_connected' },
  },
  {
    name: 'session chunks planted beside the single session cookie',
    request: (ctx) =>
      ctx.victim.send(ctx.victim, { path: '/protected', cookie: (jar) => `${jar}; ${COOKIE}.0=junk; ${COOKIE}.1=junk` }),
    expect: { status: 200, code: undefined },
  },
  {
    name: 'cookies named __proto__, constructor and oauth_tx.__proto__',
    request: (ctx) =>
      ctx.victim.send(ctx.victim, {
        path: '/auth/op/login',
        cookie: (jar) => `__proto__=x; constructor=y; ${TX}__proto__=z; hasOwnProperty=1; ${jar}`,
      }),
    expect: { status: 302, code: undefined },
  },
  {
    name: 'cookies with undecodable percent-encoding',
    request: (ctx) =>
      ctx.victim.send(ctx.victim, { path: '/protected', cookie: (jar) => `${TX}x=%E0%A4%A; ${COOKIE}.9=%; ${jar}; z=%ZZ` }),
    expect: { status: 200, code: undefined },
  },

  // Callback parameters: missing, repeated, huge, unicode, control characters, encoding tricks.
  {
    name: 'callback without any parameter',
    request: (ctx) => get(ctx.victim, '/auth/op/callback'),
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'callback with state but no code',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return get(
        ctx.victim,
        callback(
          q([
            ['state', p.state],
            ['iss', ctx.issuer],
          ]),
        ),
      );
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback with an empty code',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return get(
        ctx.victim,
        callback(
          q([
            ['code', ''],
            ['state', p.state],
            ['iss', ctx.issuer],
          ]),
        ),
      );
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback repeating a real code',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const back = await ctx.authorize(p);
      const code = back.searchParams.get('code') ?? '';
      const res = await get(ctx.victim, `${back.pathname}${back.search}&${q([['code', code]])}`);
      expect(ctx.exchanges()).toBe(0);
      return res;
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback repeating state',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const back = await ctx.authorize(p);
      return get(ctx.victim, `${back.pathname}${back.search}&${q([['state', p.state]])}`);
    },
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'callback repeating iss',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const back = await ctx.authorize(p);
      return get(ctx.victim, `${back.pathname}${back.search}&${q([['iss', ctx.issuer]])}`);
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback repeating error',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return get(
        ctx.victim,
        callback(
          q([
            ['state', p.state],
            ['error', 'access_denied'],
            ['error', 'server_error'],
          ]),
        ),
      );
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback from another issuer (iss)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const back = await ctx.authorize(p);
      back.searchParams.set('iss', EVIL);
      const res = await get(ctx.victim, back.pathname + back.search);
      expect(ctx.exchanges()).toBe(0);
      return res;
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback with an 8 KB iss',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return get(
        ctx.victim,
        callback(
          q([
            ['code', 'abc'],
            ['state', p.state],
            ['iss', 'i'.repeat(8192)],
          ]),
        ),
      );
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback with an 8 KB state',
    request: (ctx) =>
      get(
        ctx.victim,
        callback(
          q([
            ['code', 'abc'],
            ['state', 's'.repeat(8192)],
          ]),
        ),
      ),
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'callback with an 8 KB code and no state',
    request: (ctx) => get(ctx.victim, callback(q([['code', 'c'.repeat(8192)]]))),
    expect: { status: 400, code: 'state_mismatch' },
  },
  {
    name: 'callback declined, with an 8 KB error_description that must not be reflected',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const description = `<script>reflected-marker</script>${'d'.repeat(8192)}`;
      return get(
        ctx.victim,
        callback(
          q([
            ['error', 'access_denied'],
            ['error_description', description],
            ['state', p.state],
            ['iss', ctx.issuer],
          ]),
        ),
      );
    },
    expect: { status: 403, code: 'access_denied', absent: ['reflected-marker', 'd'.repeat(200)] },
  },
  {
    // README's table: any other error= value is provider_error, 502: the one 5xx a callback can give.
    name: 'callback with error=server_error and a description that must not be reflected',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return get(
        ctx.victim,
        callback(
          q([
            ['error', 'server_error'],
            ['error_description', 'reflected-marker<b>'],
            ['state', p.state],
            ['iss', ctx.issuer],
          ]),
        ),
      );
    },
    expect: { status: 502, code: 'provider_error', absent: ['reflected-marker'] },
  },
  ...(
    [
      ['unicode', 'c\u00f6de\u{1f600}'],
      ['CR LF (header injection attempt)', `abc\r\n${INJECTED}: 1`],
      ['NUL', 'abc\u0000def'],
      ['the replacement character', 'abc\ufffd'],
    ] as const
  ).map(([what, code]): Row => ({
    name: `callback with a code holding ${what}`,
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      const res = await get(
        ctx.victim,
        callback(
          q([
            ['code', code],
            ['state', p.state],
            ['iss', ctx.issuer],
          ]),
        ),
      );
      expect(ctx.exchanges()).toBe(0);
      return res;
    },
    expect: { status: 400, code: 'invalid_callback' },
  })),
  ...(
    [
      ['unicode', (s: string) => encodeURIComponent(`${s}\u00e9`)],
      ['CR LF (header injection attempt)', (s: string) => `${s}%0D%0A${INJECTED}:%201`],
      ['NUL', (s: string) => `${s}%00`],
      ['a trailing ;code=', (s: string) => `${s};code=abc`],
      ['double percent-encoding', (s: string) => [...s].map((c) => `%25${c.charCodeAt(0).toString(16)}`).join('')],
      ['undecodable percent-encoding', (s: string) => `${s}%E0%A4%A`],
    ] as const
  ).map(([what, encode]): Row => ({
    name: `callback with a state holding ${what}`,
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return get(ctx.victim, callback(`code=abc&state=${encode(p.state)}&iss=${encodeURIComponent(ctx.issuer)}`));
    },
    expect: { status: 400, code: 'state_mismatch' },
  })),
  {
    name: 'callback with undecodable percent-encoding in iss',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.victim);
      return get(ctx.victim, callback(`code=abc&state=${p.state}&iss=http%3A%2F%2F127.0.0.1%E0%A4%A`));
    },
    expect: { status: 400, code: 'invalid_callback' },
  },
  {
    name: 'callback with state percent-encoded character by character (the same state: the login completes)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger(), { returnTo: '/encoded' });
      const back = await ctx.authorize(p);
      const state = [...p.state].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');
      back.searchParams.delete('state');
      return get(p.browser, `${back.pathname}${back.search}&state=${state}`);
    },
    expect: { status: 302, code: undefined, location: '/encoded' },
  },
  {
    name: 'callback with percent-encoded parameter names (%63ode, %73tate: the login completes)',
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger(), { returnTo: '/names' });
      const back = await ctx.authorize(p);
      const search = back.search.replace(/([?&])code=/, '$1%63ode=').replace(/([?&])state=/, '$1%73tate=');
      return get(p.browser, back.pathname + search);
    },
    expect: { status: 302, code: undefined, location: '/names' },
  },

  // Wrong methods: no route answers them, and none touches the session.
  ...(
    [
      ['PUT', 'login'],
      ['DELETE', 'login'],
      ['POST', 'login'],
      ['PATCH', 'login'],
      ['POST', 'callback'],
      ['PUT', 'callback'],
      ['DELETE', 'callback'],
      ['GET', 'logout'],
      ['HEAD', 'logout'],
      ['PUT', 'logout'],
      ['DELETE', 'logout'],
    ] as const
  ).map(([method, action]): Row => ({
    name: `${method} on ${action}`,
    request: (ctx) => ctx.victim.send(ctx.victim, { method, path: `/auth/op/${action}?returnTo=%2Fx` }),
    expect: { status: 404, code: undefined },
  })),
  {
    name: 'HEAD on login (a GET without body: the login starts)',
    request: (ctx) => ctx.victim.send(ctx.victim, { method: 'HEAD', path: '/auth/op/login' }),
    expect: { status: 302, code: undefined },
  },

  // Path tricks.
  ...(
    [
      ['/auth/op/../op/login', 302, undefined],
      ['/auth/op/%2e%2e/op/login', 302, undefined],
      ['/auth/op/./login', 302, undefined],
      ['/auth/%6Fp/login', 302, undefined],
      ['/auth/%2e%2e/op/login', 404, undefined],
      ['/auth/../auth/op/../../op/login', 404, undefined],
      ['/auth/op/login/..', 404, undefined],
      ['//auth/op/login', 404, undefined],
      ['/auth//op/login', 404, undefined],
      ['/auth/op//login', 404, undefined],
      ['/auth/op%2Flogin', 404, undefined],
      ['/auth/op%2flogin/callback', 404, 'unknown_provider'],
      ['/auth/op/login/', 404, undefined],
      ['/auth/op/login;jsessionid=1', 404, undefined],
      ['/auth/op/login%3FreturnTo=/x', 404, undefined],
      ['/AUTH/op/login', 404, undefined],
      ['/auth/OP/login', 404, 'unknown_provider'],
      ['/auth/op/LOGIN', 404, undefined],
      ['/auth/op/%6Cogin', 404, undefined],
      ['/auth/__proto__/login', 404, 'unknown_provider'],
      ['/auth/constructor/callback', 404, 'unknown_provider'],
      ['/auth/hasOwnProperty/login', 404, 'unknown_provider'],
      ['/auth/op/__proto__', 404, undefined],
      ['/auth/op/constructor', 404, undefined],
      ['/auth/%ZZ/login', 404, undefined],
      ['/auth/op%00/login', 404, 'unknown_provider'],
      [`/auth/op%0D%0A${INJECTED}:%201/login`, 404, 'unknown_provider'],
      ['/auth/%E2%80%AEpo/login', 404, 'unknown_provider'],
      [`/auth/${'p'.repeat(8000)}/login`, 404, 'unknown_provider'],
      ['http://evil.example/auth/op/login', 404, undefined],
      ['/auth', 404, undefined],
      ['/auth/', 404, undefined],
    ] as const
  ).map(([path, status, code]): Row => ({
    name: `path ${path.length > 60 ? `${path.slice(0, 40)}... (${path.length} chars)` : path}`,
    request: (ctx) => get(ctx.victim, path),
    expect: { status, code },
    // The login route itself, at our own baseUrl: the authority the client named plays no part.
    ...(path.startsWith('http:')
      ? { on: { fetch: { status: 302, code: undefined }, hono: { status: 302, code: undefined } } }
      : {}),
    ...(path.includes('%ZZ') ? { on: { fastify: { status: 400, code: undefined } } } : {}),
  })),
  {
    name: 'path with a script as provider name, from a browser (the error page does not reflect it)',
    request: (ctx) => get(ctx.victim, '/auth/%3Cscript%3Ealert(1)%3C%2Fscript%3E/login', { accept: 'text/html' }),
    expect: { status: 404, code: 'unknown_provider', absent: ['<script>alert(1)'] },
  },
  {
    name: 'path trick on logout: POST /auth/__proto__/logout',
    request: (ctx) => logout(ctx.victim, '/auth/__proto__/logout'),
    expect: { status: 404, code: 'unknown_provider' },
  },
  {
    name: 'path trick on logout: POST /auth/op/../op/logout?returnTo=//evil.example (a real logout, to /)',
    request: (ctx) => logout(ctx.stranger(), '/auth/op/../op/logout?returnTo=//evil.example', { accept: 'text/html' }),
    expect: { status: 302, code: undefined, location: '/' },
  },
  {
    // Node reads what follows the CR LF as a header line of the request, never of the answer.
    name: 'raw CR LF splitting the request target',
    request: (ctx) =>
      ctx.raw(`GET /auth/op/login?returnTo=/x\r\n${INJECTED}: 1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`),
    expect: { status: 302, code: undefined },
  },
  ...(
    [
      ['a bare CR', 'GET /auth/op/lo\rgin HTTP/1.1'],
      ['a bare LF', 'GET /auth/op/login?returnTo=/x\n HTTP/1.1'],
      ['NUL', 'GET /auth/op\u0000/login HTTP/1.1'],
      ['a space', 'GET /auth/op /login HTTP/1.1'],
    ] as const
  ).map(([what, line]): Row => ({
    name: `raw ${what} in the request target (refused by Node before the app)`,
    request: (ctx) => ctx.raw(`${line}\r\nHost: a\r\nConnection: close\r\n\r\n`),
    expect: { status: 400, code: undefined },
  })),

  // returnTo: anything but a local path lands on afterLogin ('/').
  ...(
    [
      ['absolute', `${EVIL}/x`, '/'],
      ['protocol-relative', '//evil.example/x', '/'],
      ['backslash after the slash', '/\\evil.example', '/'],
      ['two backslashes', '\\\\evil.example', '/'],
      ['javascript:', 'javascript:alert(1)', '/'],
      ['javascript: split by a tab', 'java\tscript:alert(1)', '/'],
      ['data:', 'data:text/html,<script>alert(1)</script>', '/'],
      ['percent-encoded protocol-relative', '%2F%2Fevil.example', '/'],
      ['single slash scheme', 'https:/evil.example', '/'],
      ['tab inside', '/\t/evil.example', '/'],
      ['newline inside', '/\n/evil.example', '/'],
      ['CR LF and a header', `/x\r\n${INJECTED}: 1`, '/'],
      ['CR LF and a Set-Cookie', '/x\r\nSet-Cookie: planted=1', '/'],
      ['dot segments to //', '/..//evil.example', '/'],
      ['encoded dot segments to //', '/%2e%2e//evil.example', '/'],
      ['over 2048 characters', `/${'a'.repeat(3000)}`, '/'],
      ['of 2049 characters', `/${'a'.repeat(2048)}`, '/'],
      ['of 2048 characters (the longest kept)', `/${'a'.repeat(2047)}`, `/${'a'.repeat(2047)}`],
      ['a local path with encoded slashes (kept, still local)', '/%2F%2Fevil.example', '/%2F%2Fevil.example'],
      ['a local path with encoded CR LF (kept encoded)', `/x%0D%0A${INJECTED}:%201`, `/x%0D%0A${INJECTED}:%201`],
    ] as const
  ).map(([what, returnTo, location]): Row => ({
    name: `returnTo ${what} (logout)`,
    request: (ctx) => logoutTo(ctx, returnTo),
    expect: { status: 302, code: undefined, location },
  })),
  {
    name: 'returnTo repeated, local first then protocol-relative (the first wins)',
    request: (ctx) =>
      logout(ctx.stranger(), '/auth/op/logout?returnTo=%2Fok&returnTo=%2F%2Fevil.example', { accept: 'text/html' }),
    expect: { status: 302, code: undefined, location: '/ok' },
  },
  {
    name: 'returnTo protocol-relative in the logout form body',
    request: (ctx) => {
      const s = ctx.stranger();
      return s.send(s, {
        method: 'POST',
        path: '/auth/op/logout',
        headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
        body: 'returnTo=%2F%2Fevil.example',
      });
    },
    expect: { status: 302, code: undefined, location: '/' },
  },
  ...(
    [
      ['protocol-relative', '//evil.example/x'],
      ['backslashes', '/\\\\evil.example'],
      ['CR LF and a header', `/x\r\n${INJECTED}: 1`],
      ['a tab', '/\t/evil.example'],
    ] as const
  ).map(([what, returnTo]): Row => ({
    name: `returnTo ${what}, through a whole login`,
    request: async (ctx) => {
      const p = await ctx.pending(ctx.stranger(), { returnTo });
      const back = await ctx.authorize(p);
      return get(p.browser, back.pathname + back.search);
    },
    expect: { status: 302, code: undefined, location: '/' },
  })),
  {
    name: 'guarded route with CR LF and a header in its query, from a browser',
    request: (ctx) =>
      get(ctx.stranger(), `/protected?x=%0D%0A${INJECTED}:%201&y=%0D%0ASet-Cookie:%20planted=1`, { accept: 'text/html' }),
    expect: { status: 302, code: undefined },
  },

  // Accept: only a client that takes HTML is a browser.
  {
    name: 'guarded route, Accept text/html;q=0 (not a browser: JSON 401)',
    request: (ctx) => get(ctx.stranger(), '/protected', { accept: 'text/html;q=0, application/json' }),
    expect: { status: 401, code: 'not_connected' },
  },
  {
    name: 'guarded route, Accept of a browser (redirected to the login)',
    request: (ctx) =>
      get(ctx.stranger(), '/protected', { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }),
    expect: { status: 302, code: undefined, location: '/auth/op/login?returnTo=%2Fprotected' },
  },
  {
    name: 'guarded route, Accept */*',
    request: (ctx) => get(ctx.stranger(), '/protected', { accept: '*/*' }),
    expect: { status: 401, code: 'not_connected' },
  },

  // Concurrent logins in one browser.
  {
    name: '30 concurrent logins in the signed-in browser, then one more login',
    request: async (ctx) => {
      const burst = await Promise.all(Array.from({ length: 30 }, () => ctx.victim.send(ctx.victim, { path: '/auth/op/login' })));
      expect(burst.map((r) => r.status)).toEqual(burst.map(() => 302));
      expect(ctx.victim.transactions().length).toBeLessThanOrEqual(MAX_TX_COOKIES);
      const next = await get(ctx.victim, '/auth/op/login');
      expect(ctx.victim.transactions().length).toBeLessThanOrEqual(MAX_TX_COOKIES);
      return next;
    },
    expect: { status: 302, code: undefined },
  },
  {
    name: '40 concurrent logins in a new browser, then a whole login',
    request: async (ctx) => {
      const browser = ctx.stranger();
      const burst = await Promise.all(Array.from({ length: 40 }, () => browser.send(browser, { path: '/auth/op/login' })));
      expect(burst.map((r) => r.status)).toEqual(burst.map(() => 302));
      expect(browser.transactions().length).toBeLessThanOrEqual(MAX_TX_COOKIES);
      const p = await ctx.pending(browser, { returnTo: '/after-burst' });
      const back = await ctx.authorize(p);
      const res = await get(browser, back.pathname + back.search);
      expect(browser.transactions().length).toBeLessThanOrEqual(MAX_TX_COOKIES);
      return res;
    },
    expect: { status: 302, code: undefined, location: '/after-burst' },
  },

  // Logout CSRF: what the browser says about the request's site.
  ...(
    [
      ['a cross-site Origin', { origin: EVIL }],
      ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
      ['Origin: null (sandboxed frame, data: URL)', { origin: 'null' }],
      ['an Origin on another port of the same host', { origin: 'http://127.0.0.1:4000' }],
      ['an Origin extending the app host', { origin: 'http://127.0.0.1:3999.evil.example' }],
      ['an Origin of the https twin', { origin: 'https://127.0.0.1:3999' }],
      ['the own Origin but Sec-Fetch-Site: cross-site', { origin: BASE_URL, 'sec-fetch-site': 'cross-site' }],
      ['two Origin headers, own and cross-site', { origin: [BASE_URL, EVIL] }],
      ['a cross-site Origin, from a browser form with a returnTo', { origin: EVIL, accept: 'text/html' }],
    ] as const
  ).map(([what, headers]): Row => ({
    name: `logout with ${what}`,
    request: (ctx) => logout(ctx.victim, '/auth/op/logout?returnTo=%2F%2Fevil.example', headers),
    expect: { status: 403, code: 'cross_site_request' },
  })),
];

// ---------------------------------------------------------------------------------------------
// Running it.

const cookies = { name: 'cookie store', store: (): OAuthConfig['store'] => undefined };
const memory = { name: 'memory store', store: (): OAuthConfig['store'] => memoryStore() };
// The newest majors with both kinds of store; the older majors (which only change the framework
// around the adapter) with the default store.
const combinations = adapters.flatMap((adapter) =>
  (adapter.name.includes('@') ? [cookies] : [cookies, memory]).map((store) => ({ adapter, store })),
);

let op: TestServer;
const verifiers: string[] = [];
const codes: string[] = [];

beforeAll(async () => {
  op = await startAuthorizationServer(['op', 'other']);
  // The PKCE verifiers the library sent, to look for them in every answer.
  onVerifier(op, (verifier) => verifiers.push(verifier));
});
afterAll(async () => {
  await op?.close();
  agent.destroy();
});

it('has enough rows, each named once', () => {
  expect(rows.length).toBeGreaterThanOrEqual(60);
  expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
});

/** The OAuthError code an answer carries: the JSON `error`, or the code on the HTML page. */
function codeOf(reply: Reply): string | undefined {
  const type = String(reply.headers['content-type'] ?? '');
  if (type.includes('json')) {
    try {
      const parsed = JSON.parse(reply.body) as { error?: unknown };
      // Ours are snake_case; a framework's own JSON (Fastify's 404) names its status there instead.
      return typeof parsed.error === 'string' && /^[a-z_]+$/.test(parsed.error) ? parsed.error : undefined;
    } catch {
      return undefined;
    }
  }
  return /<small>([a-z_]+)<\/small>/.exec(reply.body)?.[1];
}

function secrets(): string[] {
  const { accessTokens, refreshTokens, idTokens } = op.issued;
  return [CLIENT_SECRET, APP_SECRET, ...accessTokens, ...refreshTokens, ...idTokens, ...codes, ...verifiers];
}

describe.each(combinations)('$adapter.name, $store.name', ({ adapter, store }) => {
  let app: RunningApp;
  let victim: Browser;
  let victimToken: string;
  let replies: Reply[] = [];

  const sendVia = async (browser: Browser, req: Req): Promise<Reply> => {
    const reply = await send(
      app.url,
      req,
      req.cookie ? req.cookie(browser.cookieHeader(req.path)) : browser.cookieHeader(req.path),
    );
    replies.push(reply);
    browser.apply(reply);
    return reply;
  };

  async function signInVictim() {
    victim = new Browser(sendVia);
    const started = await get(victim, '/auth/op/login');
    const back = await completeLogin(started.headers.location ?? '');
    codes.push(back.searchParams.get('code') ?? '');
    expect((await get(victim, back.pathname + back.search)).status).toBe(302);
    const token = await get(victim, '/token/op');
    expect(token.status).toBe(200);
    victimToken = (JSON.parse(token.body) as { accessToken: string }).accessToken;
  }

  beforeAll(async () => {
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: APP_SECRET,
      providers: { op: testProvider(op), other: testProvider(op) },
      store: store.store(),
    });
    app = await adapter.start(oauth);
    await signInVictim();
  });
  afterAll(async () => {
    await app?.close();
  });

  let victimLost = false;
  beforeEach(async () => {
    if (victimLost) await signInVictim();
    victimLost = false;
    // Each row starts from a signed-in browser with no login in flight (what earlier rows
    // planted or left pending stays out of the next row).
    for (const c of victim.transactions()) victim.delete(c);
    replies = [];
  });

  it.each(rows)('$name', async (row) => {
    victimLost = true; // until the check at the end says otherwise
    const exchangedBefore = op.counts.authorization_code;
    const ctx: Ctx = {
      victim,
      stranger: () => new Browser(sendVia),
      async pending(browser, options = {}) {
        const provider = options.provider ?? 'op';
        const path = `/auth/${provider}/login${options.returnTo === undefined ? '' : `?${q([['returnTo', options.returnTo]])}`}`;
        const res = await get(browser, path);
        expect(res.status).toBe(302);
        const location = res.headers.location ?? '';
        const state = new URL(location).searchParams.get('state') ?? '';
        // The transaction cookie this login wrote (whatever its name: the state, or a slot).
        const written = (res.headers['set-cookie'] ?? [])
          .map((line) => line.split(';')[0] ?? '')
          .find((pair) => {
            const [name = '', value = ''] = pair.split(/=(.*)/s);
            return isTransaction(name) && value !== '';
          });
        const cookie = browser.all().find((c) => written?.startsWith(`${c.name}=`));
        if (!cookie) throw new Error(`no transaction cookie for ${state}`);
        return { browser, provider, state, cookie, location };
      },
      async authorize(p) {
        const back = await completeLogin(p.location);
        const code = back.searchParams.get('code');
        if (code) codes.push(code);
        return back;
      },
      raw: async (head) => {
        const reply = await sendRaw(app.url, head);
        replies.push(reply);
        return reply;
      },
      exchanges: () => op.counts.authorization_code - exchangedBefore,
      issuer: op.issuer,
    };

    const answered: Reply[] = [];
    replies = answered;
    const reply = await row.request(ctx);
    replies = []; // the victim check below is not the row's answer

    // 1. The status and the error code.
    const expected = row.on?.[adapter.name] ?? row.expect;
    expect({ status: reply.status, code: codeOf(reply) }).toEqual({ status: expected.status, code: expected.code });
    if (expected.location !== undefined) expect(reply.headers.location).toBe(expected.location);
    for (const r of answered) {
      if (r.status >= 500) expect(r, 'only the rows README gives a 5xx may get one').toBe(reply);
      expect(r.status).toBeLessThan(row.expect.status >= 500 ? 600 : 500);
      // Whatever the input, a redirect stays on this site or goes to the provider.
      if (r.headers.location !== undefined) {
        const target = new URL(r.headers.location, app.url).origin;
        expect([new URL(app.url).origin, op.issuer]).toContain(target);
      }
      // No header injected from the request, nor a cookie planted through it.
      expect(r.headers[INJECTED]).toBeUndefined();
      expect((r.headers['set-cookie'] ?? []).filter((c) => c.startsWith('planted'))).toEqual([]);
    }

    // 2. No secret anywhere in any answer of the row.
    const everything = secrets();
    expect(verifiers.length, 'the PKCE verifiers of the sign-ins').toBeGreaterThan(0);
    for (const secret of everything) expect(secret).toMatch(/^\S{16,}$/);
    for (const r of answered) {
      const text = [`${r.status} ${r.statusMessage}`, ...r.rawHeaders, r.body].join('\n');
      for (const secret of everything) expect(text.includes(secret), `a secret in the answer to "${row.name}"`).toBe(false);
      for (const marker of row.expect.absent ?? []) expect(text, 'reflected input').not.toContain(marker);
    }

    // 3. The signed-in browser still gets the very same token.
    const token = await get(victim, '/token/op');
    replies = [];
    expect(token.status).toBe(200);
    expect((JSON.parse(token.body) as { accessToken: string }).accessToken).toBe(victimToken);
    victimLost = false;
  });
});
