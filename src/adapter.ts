/**
 * What an adapter for another framework is written against (`oauth-middleware/adapter`). The
 * Express and Koa adapters (`src/express.ts`, `src/koa.ts`) use nothing else, and each is about a
 * hundred lines. An adapter:
 *
 * 1. turns its framework's request into an `HttpRequest` (method, path with query, headers, a parsed
 *    body when there is one, and the framework's own request as `native`);
 * 2. gives the core a `ResponseCookies` over its response (read and replace `Set-Cookie`, and say
 *    when the head is already sent);
 * 3. per request, calls `oauth.handle(request, cookies)`: a `RouteResult` (status, `location`,
 *    `json`) is a login route's answer to send; undefined lets the request through, after setting
 *    the framework's `req.oauth` to `oauth.context(request, cookies)`;
 * 4. for `requireToken(provider)`, sends what `oauth.guard(context, provider, request)` answers, if
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
export { createOAuth, type OAuth } from './flow.js';
export type { OAuthContext } from './request-tokens.js';
export { type HttpRequest, isBrowser, type RouteResult } from './http.js';
export type { OAuthConfig } from './config.js';
export { OAuthError } from './errors.js';
export { type ErrorResponse, renderError } from './render.js';
export type { ResponseCookies } from './session.js';
