/**
 * oauth-middleware for Hono, over the web-standard adapter (`oauth-middleware/fetch`): copy this
 * file into your app. `c.var.oauth` is the request's token API, typed through `OAuthEnv`.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { OAuth, OAuthConfig, OAuthContext } from 'oauth-middleware';
import { type FetchRequest, fetchOAuth } from 'oauth-middleware/fetch';

/** What the middleware puts on the context: `c.var.oauth` (or `c.get('oauth')`). */
export type OAuthEnv = { Variables: { oauth: OAuthContext; oauthRequest: FetchRequest } };

/** Serves the login routes and sets `c.var.oauth`; the cookies it sets go on whatever the app answers. */
export function oauthMiddleware(config: OAuthConfig | OAuth): MiddlewareHandler<OAuthEnv> {
  const oauth = fetchOAuth(config);
  return createMiddleware<OAuthEnv>(async (c, next) => {
    const scope = oauth.request(c.req.raw);
    c.set('oauth', scope.oauth);
    c.set('oauthRequest', scope);
    const login = await scope.route();
    if (login) return scope.respond(login);
    await next();
    for (const cookie of scope.setCookies()) c.header('set-cookie', cookie, { append: true });
  });
}

/** Lets the request through when a token for `provider` can be had; else a redirect to log in (browsers) or a 401. */
export function requireToken(provider: string): MiddlewareHandler<OAuthEnv> {
  return createMiddleware<OAuthEnv>(async (c, next) => {
    const denied = await c.var.oauthRequest.requireToken(provider);
    if (denied) return denied;
    await next();
  });
}

/** For `app.onError`: an `OAuthError` rendered (a page for browsers, JSON otherwise), else undefined. */
export function renderOAuthError(err: unknown, c: Context<OAuthEnv>): Response | undefined {
  return c.var.oauthRequest?.renderError(err);
}
