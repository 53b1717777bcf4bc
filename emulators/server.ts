/**
 * The shared machinery of the provider emulators: a `node:http` server on 127.0.0.1, routing by
 * method and path, body parsing, counting, rejection records and the token bookkeeping. It ships
 * in the package (`oauth-middleware/testing`), so it depends on nothing but Node.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Emulator, EmulatorEndpoints, EmulatorOptions } from './types.js';

export type EndpointName = keyof Emulator['counts'];

/** A parsed request, as a route handler sees it. */
export interface EmulatorRequest {
  method: string;
  path: string;
  /** Everything after `?`, undecoded; undefined without `?`. Dropbox Sign's valueless `?refresh` needs it raw. */
  rawQuery: string | undefined;
  query: URLSearchParams;
  /** Values of `:name` segments of the route's path. */
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** `invalid`: unparsable JSON, JSON that is not an object, or a repeated form parameter (RFC 6749 §3.2). */
  bodyType: 'none' | 'form' | 'json' | 'multipart' | 'other' | 'invalid';
  /** Form (and multipart) fields as strings, or the JSON object; empty unless `bodyType` is form, multipart or json. */
  body: Record<string, unknown>;
}

/** What a handler answers. A `reason` marks a refusal and lands in `rejections`. */
export interface Reply {
  status: number;
  json?: unknown;
  html?: string;
  location?: string;
  headers?: Record<string, string>;
  reason?: string;
  /** The tokens a successful token or refresh answer hands out, for `Emulator.issued`. */
  issued?: { accessToken: string; refreshToken?: string | undefined };
}

export interface Route {
  method: string;
  /** Exact path; segments written `:name` match any one segment. */
  path: string;
  /** The counter this route feeds; a function when one path serves two endpoints (code exchange and refresh). */
  endpoint?: EndpointName | ((req: EmulatorRequest) => EndpointName);
  handle(req: EmulatorRequest): Reply | Promise<Reply>;
}

/** What a provider's handlers work with: the live emulator (declineNext, accessTokenTtl), its tokens, the app's callback. */
export interface EmulatorContext {
  emulator: Emulator;
  book: TokenBook;
  redirectUri: string;
}

export interface EmulatorSetup {
  options: EmulatorOptions;
  endpoints(origin: string, clientId: string): EmulatorEndpoints;
  /** Called once the origin is known. */
  routes(context: EmulatorContext): Route[];
}

const MAX_BODY_BYTES = 1024 * 1024;

/** Starts an emulator on 127.0.0.1 with an ephemeral port. */
export async function startEmulator(setup: EmulatorSetup): Promise<Emulator> {
  const defaults = { accessTokenTtl: setup.options.accessTokenTtl ?? 3600 };
  const book = new TokenBook();
  let routes: Route[] = [];
  const server = createServer((req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('emulator error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = setup.options.clientId ?? 'test-client-id';

  const emulator: Emulator = {
    origin,
    endpoints: setup.endpoints(origin, clientId),
    clientId,
    clientSecret: setup.options.clientSecret ?? 'test-client-secret-0123456789',
    counts: { authorize: 0, token: 0, refresh: 0, revoke: 0, api: 0 },
    rejections: [],
    issued: [],
    accessTokenTtl: defaults.accessTokenTtl,
    declineNext: false,
    failWith: undefined,
    async authorize(authorizationUrl) {
      const response = await fetch(authorizationUrl, { redirect: 'manual' });
      const location = response.headers.get('location');
      if (response.status < 300 || response.status > 399 || location === null) {
        const text = (await response.text())
          .replace(/<[^>]*>/g, ' ')
          .replace(/\s+/g, ' ')
          .trim();
        throw new Error(`authorization was not redirected back (HTTP ${response.status}): ${text.slice(0, 200)}`);
      }
      return new URL(location, authorizationUrl);
    },
    revokeAll: () => book.revokeAll(),
    expireAccessTokens: () => book.expireAccessTokens(),
    reset() {
      for (const key of Object.keys(emulator.counts) as EndpointName[]) emulator.counts[key] = 0;
      emulator.rejections.length = 0;
      emulator.issued.length = 0;
      emulator.accessTokenTtl = defaults.accessTokenTtl;
      emulator.declineNext = false;
      emulator.failWith = undefined;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
  routes = setup.routes({ emulator, book, redirectUri: setup.options.redirectUri });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawTarget = req.url ?? '/';
    // Concatenated, not resolved: a target such as `//host/x` must stay a path on this origin.
    const url = new URL(`${origin}${rawTarget}`);
    const q = rawTarget.indexOf('?');
    const method = req.method ?? 'GET';
    const candidates = routes.map((route) => ({ route, params: matchPath(route.path, url.pathname) }));
    const found = candidates.find((c) => c.params && c.route.method === method);
    if (!found?.params) {
      const allowed = candidates.filter((c) => c.params).map((c) => c.route.method);
      const status = allowed.length > 0 ? 405 : 404;
      const reason = status === 405 ? `method not allowed (use ${allowed.join(', ')})` : 'no such endpoint';
      emulator.rejections.push({ endpoint: `${method} ${url.pathname}`, status, reason });
      res.writeHead(status, { 'content-type': 'text/plain', ...(status === 405 && { allow: allowed.join(', ') }) });
      res.end(status === 405 ? 'Method Not Allowed' : 'Not Found');
      return;
    }
    const request: EmulatorRequest = {
      method,
      path: url.pathname,
      rawQuery: q === -1 ? undefined : rawTarget.slice(q + 1),
      query: url.searchParams,
      params: found.params,
      headers: req.headers,
      ...(await readBody(req)),
    };
    const { route } = found;
    const endpoint = typeof route.endpoint === 'function' ? route.endpoint(request) : route.endpoint;
    if (endpoint) emulator.counts[endpoint]++;
    const reply =
      // A simulated outage answers before any validation, with the HTML a proxy would send (not JSON).
      (endpoint === 'token' || endpoint === 'refresh') && emulator.failWith !== undefined
        ? outage(emulator.failWith)
        : await route.handle(request);
    if (reply.issued && (endpoint === 'token' || endpoint === 'refresh')) emulator.issued.push({ endpoint, ...reply.issued });
    if (reply.reason !== undefined) {
      emulator.rejections.push({ endpoint: endpoint ?? `${method} ${url.pathname}`, status: reply.status, reason: reply.reason });
    }
    send(res, reply);
  }

  return emulator;
}

function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, segment] of want.entries()) {
    const actual = got[i] ?? '';
    if (segment.startsWith(':') && actual !== '') params[segment.slice(1)] = safeDecode(actual);
    else if (segment !== actual) return undefined;
  }
  return params;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

async function readBody(req: IncomingMessage): Promise<Pick<EmulatorRequest, 'bodyType' | 'body'>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { bodyType: 'invalid', body: {} };
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  const text = raw.toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'multipart/form-data') {
    // Parsed by the web platform's own multipart reader (curl -F, the Dropbox Sign examples).
    try {
      const form = await new Response(raw, { headers: { 'content-type': req.headers['content-type'] as string } }).formData();
      const body: Record<string, string> = {};
      let invalid = false;
      form.forEach((value, key) => {
        if (key in body || typeof value !== 'string') invalid = true;
        else body[key] = value;
      });
      return invalid ? { bodyType: 'invalid', body: {} } : { bodyType: 'multipart', body };
    } catch {
      return { bodyType: 'invalid', body: {} };
    }
  }
  if (text === '' && type === '') return { bodyType: 'none', body: {} };
  if (type === 'application/x-www-form-urlencoded') {
    const body: Record<string, string> = {};
    for (const [key, value] of new URLSearchParams(text)) {
      if (key in body) return { bodyType: 'invalid', body: {} };
      body[key] = value;
    }
    return { bodyType: 'form', body };
  }
  if (type === 'application/json') {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        return { bodyType: 'json', body: parsed as Record<string, unknown> };
      }
    } catch {
      // falls through: a body that claims JSON but is not
    }
    return { bodyType: 'invalid', body: {} };
  }
  return { bodyType: 'other', body: {} };
}

function send(res: ServerResponse, reply: Reply): void {
  // Token answers must not be cached (RFC 6749 §5.1); harmless elsewhere.
  const headers: Record<string, string> = { 'cache-control': 'no-store', pragma: 'no-cache', ...reply.headers };
  if (reply.location !== undefined) headers.location = reply.location;
  let payload = '';
  if (reply.json !== undefined) {
    headers['content-type'] = 'application/json; charset=utf-8';
    payload = JSON.stringify(reply.json);
  } else if (reply.html !== undefined) {
    headers['content-type'] = 'text/html; charset=utf-8';
    payload = reply.html;
  }
  res.writeHead(reply.status, headers);
  res.end(payload);
}

function outage(status: number): Reply {
  return {
    status,
    html: `<html><body><h1>${status}</h1><p>Service unavailable</p></body></html>`,
    reason: 'failWith (simulated outage)',
  };
}

/** A refusal as an HTML page, the way authorization endpoints show errors to the user instead of redirecting. */
export function errorPage(reason: string): Reply {
  const text = reason.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return {
    status: 400,
    html: `<!doctype html><title>Authorization error</title><h1>Authorization error</h1><p>${text}</p>`,
    reason,
  };
}

/** Appends the callback parameters; `undefined` values are left out. */
export function redirectTo(target: string, params: Record<string, string | undefined>): Reply {
  const url = new URL(target);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(key, value);
  return { status: 302, location: url.href };
}

/** A string field of a form or JSON body; anything else (absent, number, object) is undefined. */
export function field(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Checks `Authorization: Basic` client credentials: undefined without such a header, else whether
 * they match. RFC 6749 §2.3.1 form-encodes id and secret before base64, many clients do not: both pass.
 */
export function basicMatches(req: EmulatorRequest, clientId: string, clientSecret: string): boolean | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const formEncode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  return decoded === `${clientId}:${clientSecret}` || decoded === `${formEncode(clientId)}:${formEncode(clientSecret)}`;
}

/** The token of an `Authorization: Bearer` header, or undefined. */
export function bearerToken(req: EmulatorRequest): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** An unguessable token: `bytes` random bytes, base64url. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** A string shaped like a JWT (header.payload.signature); the signature is random, nobody verifies it. */
export function jwtLike(payload: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ...payload, jti: randomToken(12) })}.${randomToken(32)}`;
}

/** One user's authorization of the app. */
export interface Grant {
  revoked: boolean;
}

/** Why a token was refused, or the grant it belongs to. */
export type TokenCheck = { ok: true; grant: Grant } | { ok: false; why: 'unknown' | 'expired' | 'revoked' };

/**
 * Codes, grants and tokens of one emulator. A grant is one user's authorization of the app:
 * revoking it ends every token issued under it, as removing the app at the provider does.
 */
export class TokenBook {
  private readonly codes = new Map<string, number>();
  private readonly grants = new Set<Grant>();
  private readonly access = new Map<string, { grant: Grant; expiresAt: number | undefined; revoked: boolean }>();
  private readonly refresh = new Map<string, { grant: Grant; expiresAt: number | undefined }>();

  addCode(code: string, lifetimeSeconds: number): string {
    this.codes.set(code, Date.now() + lifetimeSeconds * 1000);
    return code;
  }

  /** Codes are single use: taking one deletes it, valid or not. */
  takeCode(code: string): { ok: true } | { ok: false; why: 'unknown' | 'expired' } {
    const expiresAt = this.codes.get(code);
    this.codes.delete(code);
    if (expiresAt === undefined) return { ok: false, why: 'unknown' };
    if (Date.now() >= expiresAt) return { ok: false, why: 'expired' };
    return { ok: true };
  }

  newGrant(): Grant {
    const grant = { revoked: false };
    this.grants.add(grant);
    return grant;
  }

  /** Records an access token; returns its expiry in epoch ms (undefined: never expires). */
  addAccess(token: string, grant: Grant, lifetimeSeconds: number | undefined): number | undefined {
    const expiresAt = lifetimeSeconds === undefined ? undefined : Date.now() + lifetimeSeconds * 1000;
    this.access.set(token, { grant, expiresAt, revoked: false });
    return expiresAt;
  }

  /**
   * Records a refresh token. `expiresAt` (epoch ms) is the very instant the answer announces, so the
   * token is refused exactly from then; without it the token lasts until revoked or rotated away.
   */
  addRefresh(token: string, grant: Grant, expiresAt?: number): string {
    this.refresh.set(token, { grant, expiresAt });
    return token;
  }

  checkAccess(token: string | undefined): TokenCheck {
    const entry = token === undefined ? undefined : this.access.get(token);
    if (!entry) return { ok: false, why: 'unknown' };
    if (entry.revoked || entry.grant.revoked) return { ok: false, why: 'revoked' };
    if (entry.expiresAt !== undefined && Date.now() >= entry.expiresAt) return { ok: false, why: 'expired' };
    return { ok: true, grant: entry.grant };
  }

  checkRefresh(token: string | undefined): TokenCheck {
    const entry = token === undefined ? undefined : this.refresh.get(token);
    if (!entry) return { ok: false, why: 'unknown' };
    if (entry.grant.revoked) return { ok: false, why: 'revoked' };
    if (entry.expiresAt !== undefined && Date.now() >= entry.expiresAt) return { ok: false, why: 'expired' };
    return { ok: true, grant: entry.grant };
  }

  /** For rotation: the old refresh token stops working, the grant and its access tokens stay. */
  dropRefresh(token: string): void {
    this.refresh.delete(token);
  }

  revokeAccess(token: string): void {
    const entry = this.access.get(token);
    if (entry) entry.revoked = true;
  }

  revokeGrant(grant: Grant): void {
    grant.revoked = true;
  }

  revokeAll(): void {
    for (const grant of this.grants) grant.revoked = true;
    this.codes.clear();
  }

  /** Ends every access token issued so far early, as an API may (refresh tokens stay valid). */
  expireAccessTokens(): void {
    for (const entry of this.access.values()) if (entry.expiresAt !== undefined) entry.expiresAt = Date.now() - 1;
  }
}
