/**
 * A fault-injecting HTTP proxy for the outage tests: it sits in front of a real upstream (oidc-provider,
 * a provider emulator), forwards every request untouched (method, target, headers, body; the answer
 * likewise, status and raw headers included), and answers a chosen path with a fault instead: the
 * connection dropped, reset in the middle of the body, stalled before or after the headers, an error
 * status, or a 200 whose body is not a usable token answer. It counts requests per path.
 *
 * Hand-written on node:http: what is needed are real socket faults that the app's own fetch (undici)
 * meets on the wire, a reset after part of a body, headers and then silence. The npm proxies
 * (http-proxy, http-proxy-middleware) forward but offer no hook to cut or hold a socket midway;
 * Toxiproxy is a separate server program, not an npm package; in-process interceptors (nock, msw,
 * undici's MockAgent) replace fetch's network layer, so undici's own `terminated` and timeout
 * errors, which the library must classify, would never happen.
 *
 * Faulted requests never reach the upstream: a rotating provider (oidc-provider) would otherwise
 * spend the refresh token behind an answer the app never got, a loss no client can undo; what is
 * tested here is the app's reading of the broken answer, and that it keeps what it had.
 */
import { Agent, createServer, request as upstreamRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * What the proxy does instead of forwarding.
 * - `drop`: the connection is reset as soon as the request is in: no status, no headers.
 * - `reset-mid-body`: a 200 JSON token answer's headers and the first half of its body, then a reset.
 * - `stall-before-headers`: the request is taken and never answered.
 * - `stall-after-headers`: a 200 JSON token answer's headers (with its length), then nothing.
 * - `html`: a 200 HTML page (a captive portal, a misrouted load balancer).
 * - `truncated-json`: a 200 whose whole body arrives, and is the first part of a JSON token answer.
 * - `no-access-token`: a 200 JSON answer with every token field but `access_token`.
 * - `{ expiresIn }`: a 200 JSON token answer whose `expires_in` is this JSON text, as it is (`"soon"`, `-5`, `1e400`, `{}`).
 * - `{ patch }`: the upstream's own answer (the request is forwarded), each named top-level field of
 *   its JSON replaced by the given JSON text as it is, or removed for `null`: a real answer, ID
 *   token included, with one thing wrong in it.
 * - `{ status, body?, contentType?, headers? }`: an answer of that status (default body: a small HTML error page).
 */
export type Fault =
  | 'drop'
  | 'reset-mid-body'
  | 'stall-before-headers'
  | 'stall-after-headers'
  | 'html'
  | 'truncated-json'
  | 'no-access-token'
  | { expiresIn: string }
  | { patch: Record<string, string | null> }
  | { status: number; body?: string; contentType?: string; headers?: Record<string, string> };

/** A request as a fault rule sees it: its body read, form fields parsed. */
export interface ProxiedRequest {
  method: string;
  path: string;
  body: string;
  /** The body's form fields (empty for other bodies): `code`, `refresh_token`, `grant_type`. */
  form: URLSearchParams;
}

/** A fault for every request to a path, or one chosen request by request (undefined: forwarded). */
export type FaultRule = Fault | ((request: ProxiedRequest) => Fault | undefined);

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Answers requests to `path` (exact, without the query) with `rule` until healed. */
  fail(path: string, rule: FaultRule): void;
  /** Forwards `path` normally again (every path without an argument), and ends stalled requests. */
  heal(path?: string): void;
  /** Requests received for `path` since the start or the last `resetCounts`, faulted ones included. */
  count(path: string): number;
  resetCounts(): void;
  /** Resolves once `count(path)` reaches `n`. */
  received(path: string, n: number): Promise<void>;
  /** Stops listening and drops every open connection: new connections are refused (ECONNREFUSED). */
  refuse(): Promise<void>;
  /** Listens again, on the same port. */
  accept(): Promise<void>;
  /** Stops for good: the listener, every connection (stalled ones included), the upstream's. */
  close(): Promise<void>;
}

/** Token strings in the proxy's own answers: never issued by the upstream, so never to be kept by the app. */
export const FAULT_ACCESS_TOKEN = 'fault-proxy-access-token';
export const FAULT_REFRESH_TOKEN = 'fault-proxy-refresh-token';

const TOKEN_ANSWER = JSON.stringify({
  access_token: FAULT_ACCESS_TOKEN,
  token_type: 'Bearer',
  expires_in: 3600,
  refresh_token: FAULT_REFRESH_TOKEN,
  scope: 'openid',
});

// How long a reset waits after writing part of an answer, so that the client has read it first (a
// reset discards what the peer has not read yet).
const RESET_AFTER_MS = 50;

/**
 * Starts a proxy on 127.0.0.1 in front of `upstream` (an origin): on `port`, or a free one.
 *
 * @example
 * ```ts
 * const proxy = await startFaultProxy({ upstream: emulator.origin });
 * proxy.fail('/oauth/token', { status: 503 });
 * ```
 */
export async function startFaultProxy(options: { upstream: string; port?: number }): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  const rules = new Map<string, FaultRule>();
  const counts = new Map<string, number>();
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const stalled = new Set<Socket>();
  // Its own agent, so that close() can end the proxy's connections to the upstream too.
  const agent = new Agent({ keepAlive: true });

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      stalled.delete(socket);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '/';
    const path = new URL(target, 'http://proxy.invalid').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    for (const wake of [...waiters]) wake();
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const rule = rules.get(path);
    const text = body.toString('utf8');
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const fault =
      typeof rule === 'function'
        ? rule({ method: req.method ?? 'GET', path, body: text, form: new URLSearchParams(isForm ? text : '') })
        : rule;
    if (fault === undefined) return forward(req, res, target, body);
    if (typeof fault === 'object' && 'patch' in fault) return forward(req, res, target, body, fault.patch);
    return inject(fault, req, res);
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    body: Buffer,
    patch?: Record<string, string | null>,
  ): Promise<void> {
    return new Promise((resolve) => {
      const outgoing = upstreamRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: target,
          headers: req.headers, // Host included: the upstream sees what the client sent
          agent,
        },
        (answer) => {
          answer.on('error', () => (res.socket?.destroy(), resolve()));
          if (patch === undefined) {
            res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
            answer.pipe(res);
            answer.on('end', resolve);
            return;
          }
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('end', () => {
            const text = patched(Buffer.concat(chunks).toString('utf8'), patch);
            res.writeHead(answer.statusCode ?? 502, {
              'content-type': answer.headers['content-type'] ?? 'application/json',
              'content-length': String(Buffer.byteLength(text)),
              'cache-control': 'no-store',
            });
            res.end(text);
            resolve();
          });
        },
      );
      // The upstream is gone: so is the answer, as the client would see it without a proxy.
      outgoing.on('error', () => (req.socket.destroy(), resolve()));
      outgoing.end(body);
    });
  }

  function inject(fault: Exclude<Fault, { patch: unknown }>, req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const json = (status: number, text: string, length = Buffer.byteLength(text)) =>
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': String(length),
        'cache-control': 'no-store',
      });
    if (fault === 'drop') return reset(socket);
    if (fault === 'stall-before-headers') {
      stalled.add(socket);
      return;
    }
    if (fault === 'stall-after-headers') {
      stalled.add(socket);
      json(200, TOKEN_ANSWER);
      res.flushHeaders();
      return;
    }
    if (fault === 'reset-mid-body') {
      json(200, TOKEN_ANSWER);
      res.write(TOKEN_ANSWER.slice(0, TOKEN_ANSWER.length >> 1));
      setTimeout(() => reset(socket), RESET_AFTER_MS);
      return;
    }
    if (fault === 'html') {
      const page = '<!doctype html><title>Sign in to the network</title><p>Please accept the terms of use.</p>';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
      return;
    }
    if (fault === 'truncated-json') {
      const cut = TOKEN_ANSWER.slice(0, TOKEN_ANSWER.indexOf('"expires_in"') + 14);
      json(200, cut);
      res.end(cut);
      return;
    }
    if (fault === 'no-access-token') {
      const { access_token: _omitted, ...rest } = JSON.parse(TOKEN_ANSWER) as Record<string, unknown>;
      const text = JSON.stringify(rest);
      json(200, text);
      res.end(text);
      return;
    }
    if ('expiresIn' in fault) {
      // Written by hand: JSON.stringify cannot write 1e400 (it is Infinity once parsed).
      const text = TOKEN_ANSWER.replace('"expires_in":3600', `"expires_in":${fault.expiresIn}`);
      json(200, text);
      res.end(text);
      return;
    }
    const page = fault.body ?? `<html><body><h1>${fault.status}</h1></body></html>`;
    res.writeHead(fault.status, {
      'content-type': fault.contentType ?? (fault.body === undefined ? 'text/html' : 'application/json'),
      ...fault.headers,
    });
    res.end(page);
  }

  await listen(options.port ?? 0);
  const { port } = server.address() as AddressInfo;

  function listen(on: number): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(on, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  function endStalled(): void {
    for (const socket of stalled) socket.destroy();
    stalled.clear();
  }

  function dropAll(): void {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    stalled.clear();
  }

  function stop(): Promise<void> {
    if (!server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      dropAll();
    });
  }

  return {
    origin: `http://127.0.0.1:${port}`,
    fail(path, rule) {
      rules.set(path, rule);
    },
    heal(path) {
      if (path === undefined) rules.clear();
      else rules.delete(path);
      endStalled();
    },
    count: (path) => counts.get(path) ?? 0,
    resetCounts() {
      counts.clear();
    },
    received(path, n) {
      return new Promise((resolve) => {
        const check = () => {
          if ((counts.get(path) ?? 0) < n) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    },
    refuse: stop,
    accept: () => (server.listening ? Promise.resolve() : listen(port)),
    async close() {
      await stop();
      agent.destroy();
    },
  };
}

/** A JSON object's text with fields replaced by raw JSON texts (or removed); any other text as it is. */
function patched(text: string, patch: Record<string, string | null>): string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return text;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return text;
  const fields = Object.entries({ ...json, ...Object.fromEntries(Object.keys(patch).map((name) => [name, undefined])) });
  const parts = fields.flatMap(([name, value]) => {
    const raw = Object.hasOwn(patch, name) ? patch[name] : JSON.stringify(value);
    return raw === null || raw === undefined ? [] : [`${JSON.stringify(name)}:${raw}`];
  });
  return `{${parts.join(',')}}`;
}

/** A TCP reset (RST) where the platform offers one, else a plain close. */
function reset(socket: Socket): void {
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}
