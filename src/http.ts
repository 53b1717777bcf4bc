/**
 * The request and answer shapes the core works on, and what it reads of a request's headers.
 * Adapters build an `HttpRequest` from their framework's request and send a `RouteResult`.
 */
import Negotiator from 'negotiator';

/** A framework's request, reduced to what the flow reads. */
export interface HttpRequest {
  method: string;
  /** Path and query, as received (`/auth/google/callback?code=...`). */
  url: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** A parsed body, when the app has a body parser (used for the logout form's `returnTo`). */
  body?: unknown;
  /** The framework's own request (Express `req`, Koa `ctx`), handed to the `subject` option. */
  native?: unknown;
  /**
   * The path the app mounted the adapter below (Express's `req.baseUrl` under `app.use('/api', ...)`,
   * a router's or plugin's prefix); absent or `''` at the root. `url` still holds the whole path:
   * the login routes are served at `{mountPath}{prefix}/...` and their redirect URI says so.
   */
  mountPath?: string | undefined;
}

/** A mount path made of plain path segments, else undefined (a request under it is not ours). */
export function mountPathOf(request: HttpRequest): string | undefined {
  const mountPath = request.mountPath ?? '';
  return mountPath === '' || /^(\/[A-Za-z0-9._~-]+)+$/.test(mountPath) ? mountPath : undefined;
}

/** What the adapter sends for one of the login routes. Cookies were already written through `ResponseCookies`. */
export interface RouteResult {
  status: number;
  location?: string | undefined;
  json?: unknown;
}

/** A header's value as one string: one handed over as a list is joined with `; `, as cookies are. */
export function header(request: HttpRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join('; ') : value;
}

/**
 * Browsers get redirects and pages, any other client 401s and JSON: a browser is a client that
 * prefers HTML to JSON by its `Accept` header, read with its q-values (`text/html;q=0` refuses HTML).
 * `*` + `/*` alone prefers JSON: that is fetch's and curl's default.
 */
export function isBrowser(request: HttpRequest): boolean {
  return accepted(request).mediaType(['application/json', 'text/html']) === 'text/html';
}

/** A client that names a JSON type it accepts (`application/json`, `application/problem+json`). */
export function wantsJson(request: HttpRequest): boolean {
  return accepted(request)
    .mediaTypes()
    .map((type) => type.toLowerCase())
    .some((type) => type === 'application/json' || type.endsWith('+json'));
}

function accepted(request: HttpRequest): Negotiator {
  // Negotiator reads only the headers, and only `accept` here: nothing else of the request reaches it.
  const accept = header(request, 'accept');
  // Stryker disable next-line StringLiteral: any value no media range matches is read as this one, which accepts nothing.
  return new Negotiator({ headers: { accept: accept ?? '' } });
}
