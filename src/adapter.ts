/**
 * What an adapter for another framework is written against (`oauth-middleware/adapter`). The
 * Express, Koa, Fastify and fetch adapters (`src/express.ts`, `src/koa.ts`, ...) use nothing else, each about a
 * hundred lines. An adapter:
 *
 * 1. turns its framework's request into an `HttpRequest` (method, path with query, headers, a parsed
 *    body when there is one, the framework's own request as `native`, and as `mountPath` the path
 *    the app mounted it below, if any);
 * 2. gives the core a `ResponseCookies` over its response (read and replace `Set-Cookie`, and say
 *    when the head is already sent);
 * 3. per request, calls `oauth.request(request, cookies)` once, sets the framework's `req.oauth` to
 *    its `context` and keeps it on the request; its `route()` answers a `RouteResult` (status,
 *    `location`, `json`) to send for a login route, undefined for any other request (which
 *    `isLoginRoute` tells at once, so that the adapter can pass it on without waiting);
 * 4. for `requireToken(provider)`, sends what the kept request's `guard(provider)` answers, if
 *    anything;
 * 5. renders thrown `OAuthError`s with `renderError(err, request)` (a page for browsers, JSON for
 *    any other client), leaving every other error to the app.
 *
 * @example
 * ```ts
 * import { createOAuth, type OAuthConfig } from 'oauth-middleware';
 * import { type HttpRequest, renderError } from 'oauth-middleware/adapter';
 * ```
 */
export { createOAuth, type OAuth, type OAuthRequest } from './flow.js';
export type { OAuthContext } from './request-tokens.js';
export { type HttpRequest, isBrowser, type RouteResult } from './http.js';
export type { OAuthConfig } from './config.js';
export { OAuthError } from './errors.js';
export { type ErrorResponse, renderError } from './render.js';
export type { ResponseCookies } from './session.js';
