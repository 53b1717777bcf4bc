/**
 * Koa 3 adapter: translates requests and responses, nothing else.
 */
import type { Context, Middleware } from 'koa';
import {
  createOAuth,
  type HttpRequest,
  type OAuth,
  type OAuthConfig,
  type OAuthContext,
  type OAuthRequest,
  OAuthError,
  type ResponseCookies,
  type RouteResult,
  renderError,
} from './adapter.js';

declare module 'koa' {
  interface DefaultContext {
    /** Tokens of this request's session. Set by `oauthMiddleware`. */
    oauth: OAuthContext;
  }
}

// The request as the core saw it, for `requireToken` further down: translated once.
const SCOPE = Symbol('oauth-middleware.request');
type WithScope = Context & { [SCOPE]?: OAuthRequest };

/**
 * Mounts the login routes (`{prefix}/:provider/login`, `/callback`, `/logout`) and sets `ctx.oauth`.
 * Errors are thrown as `OAuthError`, with `status` and `expose` as Koa expects; mount
 * `oauthErrorHandler()` first to render them as a page or JSON.
 *
 * @example
 * ```ts
 * app.use(oauthErrorHandler());
 * app.use(oauthMiddleware({ baseUrl, secret, providers: { google: oidc({ ... }) } }));
 * ```
 */
export function oauthMiddleware(config: OAuthConfig | OAuth): Middleware {
  const oauth = 'handle' in config ? config : createOAuth(config);
  return function oauthMiddleware(ctx, next) {
    const scope = oauth.request(toHttpRequest(ctx), responseCookies(ctx));
    ctx.oauth = scope.context;
    (ctx as WithScope)[SCOPE] = scope;
    // Every other request goes straight on: no promise of ours for Koa to wait on.
    if (!scope.isLoginRoute) return next();
    return scope.route().then((result) => (result ? send(ctx, result) : next()));
  };
}

/**
 * Lets the request through when a token for `provider` can be had (refreshing it if due).
 * Otherwise browsers are redirected to the login route with `returnTo`, other clients get 401 JSON.
 *
 * @example
 * ```ts
 * router.get('/repos', requireToken('github'), handler);
 * ```
 */
export function requireToken(provider: string): Middleware {
  return async function requireToken(ctx, next) {
    const scope = (ctx as WithScope)[SCOPE];
    if (!scope) throw new OAuthError('config_invalid', 'requireToken() needs oauthMiddleware() mounted before it.');
    const result = await scope.guard(provider);
    if (result) send(ctx, result);
    else await next();
  };
}

/**
 * Renders `OAuthError`s thrown further down: a small page for browsers, JSON for other clients.
 * Other errors are rethrown.
 *
 * @example
 * ```ts
 * app.use(oauthErrorHandler()); // first
 * ```
 */
export function oauthErrorHandler(): Middleware {
  return async function oauthErrorHandler(ctx, next) {
    try {
      await next();
    } catch (err) {
      const rendered = renderError(err, toHttpRequest(ctx));
      if (!rendered || ctx.headerSent) throw err;
      ctx.status = rendered.status;
      ctx.type = rendered.contentType;
      ctx.body = rendered.body;
    }
  };
}

function toHttpRequest(ctx: Context): HttpRequest {
  return {
    method: ctx.method,
    url: ctx.originalUrl,
    headers: ctx.headers,
    body: (ctx.request as { body?: unknown }).body,
    native: ctx,
    mountPath: mountPathOf(ctx),
  };
}

/** Where the app mounted us: koa-mount's `mountPath` (`app.use(mount('/api', oauthMiddleware(config)))`), '' at the root. */
function mountPathOf(ctx: Context): string {
  return (ctx as Context & { mountPath?: string }).mountPath ?? '';
}

function responseCookies(ctx: Context): ResponseCookies {
  return {
    getSetCookie() {
      const current = ctx.response.get('set-cookie') as string | string[] | undefined;
      return !current ? [] : Array.isArray(current) ? current : [current];
    },
    setSetCookie(values) {
      ctx.set('set-cookie', values);
    },
    writable: () => !ctx.headerSent,
  };
}

function send(ctx: Context, result: RouteResult): void {
  ctx.status = result.status;
  if (result.location !== undefined) ctx.set('location', result.location);
  if (result.json !== undefined) ctx.body = result.json;
  // An empty body, not Koa's default status text; on a 204 Koa sends none at all.
  else ctx.body = '';
}
