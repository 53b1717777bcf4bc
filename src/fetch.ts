/**
 * Web-standard adapter (`oauth-middleware/fetch`): for servers whose handlers take a `Request` and
 * answer a `Response` (Hono, Next.js route handlers, Bun.serve, Deno.serve). Translates requests
 * and responses, nothing else.
 */
import {
  createOAuth,
  type HttpRequest,
  type OAuth,
  type OAuthConfig,
  type OAuthContext,
  type OAuthRequest,
  type ResponseCookies,
  type RouteResult,
  renderError,
} from './adapter.js';

/** One request's view of the core. Every `Response` sent for the request goes through `respond`. */
export interface FetchRequest {
  /** The request's token API, as `req.oauth` is on Express. */
  readonly oauth: OAuthContext;
  /** The answer to a login route (`/auth/:provider/login`, `/callback`, `/logout`); undefined for any other request. */
  route(): Promise<Response | undefined>;
  /** Undefined when a token for `provider` can be had (refreshed if due); else the answer to send: a redirect to the login route for browsers, a 401 for other clients. */
  requireToken(provider: string): Promise<Response | undefined>;
  /** A thrown `OAuthError` as the answer to send (a page for browsers, JSON otherwise); undefined for any other error. */
  renderError(err: unknown): Response | undefined;
  /** `response` with the cookies this request set. Call it last: a session change after it cannot reach the browser. */
  respond(response: Response): Response;
  /** The `Set-Cookie` values this request set, for frameworks that set headers their own way (`respond` does it for a `Response`). */
  setCookies(): string[];
}

/** The per-request entry, and a whole `(request) => Response` handler around an app. */
export interface FetchOAuth {
  /**
   * One request's view: call it once per request. `mountPath` is the path the app serves below
   * (`'/api'` when the platform routes `/api/*` to it with that part kept in the URL): the login
   * routes are then served at `/api/auth/...`.
   */
  request(request: Request, options?: { mountPath?: string }): FetchRequest;
  /**
   * The login routes, then `app` with the request's view; `OAuthError`s rendered, the cookies put
   * on whatever is answered. `Bun.serve({ fetch: fetchOAuth(config).handler(app) })`.
   */
  handler(app: (request: Request, scope: FetchRequest) => Response | Promise<Response>): (request: Request) => Promise<Response>;
}

/** The core for `Request`/`Response` servers, from a configuration or an `OAuth` already made. */
export function fetchOAuth(config: OAuthConfig | OAuth): FetchOAuth {
  const oauth = 'handle' in config ? config : createOAuth(config);
  const request = (native: Request, options: { mountPath?: string } = {}): FetchRequest => {
    const { pathname, search } = new URL(native.url);
    const headers: Record<string, string> = Object.create(null);
    native.headers.forEach((value, name) => (headers[name] = value));
    const httpRequest: HttpRequest = {
      method: native.method,
      url: pathname + search,
      headers,
      native,
      mountPath: options.mountPath,
    };
    // The cookies this request sets, kept until they go on its answer.
    let written: string[] = [];
    let sent = false;
    const cookies: ResponseCookies = {
      getSetCookie: () => written,
      setSetCookie: (values) => (written = [...values]),
      writable: () => !sent,
    };
    const setCookies = () => ((sent = true), written);
    const scope: OAuthRequest = oauth.request(httpRequest, cookies);
    return {
      oauth: scope.context,
      route: async () => {
        if (!scope.isLoginRoute) return undefined;
        // Only the logout form's body is read (its returnTo); a login route answers, so nobody else reads it.
        if (native.method === 'POST') httpRequest.body = await formOf(native);
        return toResponse(await scope.route());
      },
      requireToken: async (provider) => toResponse(await scope.guard(provider)),
      renderError: (err) => {
        const rendered = renderError(err, httpRequest);
        return (
          rendered && new Response(rendered.body, { status: rendered.status, headers: { 'content-type': rendered.contentType } })
        );
      },
      respond: (response) => withCookies(response, setCookies()),
      setCookies,
    };
  };
  return {
    request,
    handler: (app) => async (native) => {
      const scope = request(native);
      try {
        return scope.respond((await scope.route()) ?? (await app(native, scope)));
      } catch (err) {
        const rendered = scope.renderError(err);
        if (!rendered) throw err;
        return scope.respond(rendered);
      }
    },
  };
}

function withCookies(response: Response, values: string[]): Response {
  if (values.length === 0) return response;
  // fetch()'s and Response.redirect()'s answers have immutable headers (the first append throws): a copy then.
  let target = response;
  try {
    target.headers.append('set-cookie', values[0] as string);
  } catch {
    target = new Response(response.body, response);
    target.headers.append('set-cookie', values[0] as string);
  }
  for (const value of values.slice(1)) target.headers.append('set-cookie', value);
  return target;
}

async function formOf(request: Request): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (type.startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(await request.text()));
  return type.startsWith('application/json') ? request.json().catch(() => undefined) : undefined;
}

function toResponse(result: RouteResult | undefined): Response | undefined {
  if (!result) return undefined;
  const headers = result.location === undefined ? undefined : { location: result.location };
  return result.json === undefined
    ? new Response(null, { status: result.status, headers })
    : Response.json(result.json, { status: result.status, headers });
}
