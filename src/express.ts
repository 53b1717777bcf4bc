/**
 * Express 5 adapter: translates requests and responses, nothing else.
 */
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
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

declare global {
  namespace Express {
    interface Request {
      /** Tokens of this request's session. Set by `oauthMiddleware`. */
      oauth: OAuthContext;
    }
  }
}

// The request as the core saw it, for `requireToken` further down: translated once.
const SCOPE = Symbol('oauth-middleware.request');
type WithScope = Request & { [SCOPE]?: OAuthRequest };

/**
 * Mounts the login routes (`{prefix}/:provider/login`, `/callback`, `/logout`) and sets `req.oauth`.
 * Route errors go to `next(err)`; mount `oauthErrorHandler()` last to render them.
 *
 * @example
 * ```ts
 * app.use(oauthMiddleware({ baseUrl, secret, providers: { google: oidc({ ... }) } }));
 * app.get('/me', requireToken('google'), async (req, res) => res.json((await req.oauth.getToken('google')).claims));
 * app.use(oauthErrorHandler());
 * ```
 */
export function oauthMiddleware(config: OAuthConfig | OAuth): RequestHandler {
  const oauth = 'handle' in config ? config : createOAuth(config);
  return function oauthMiddleware(req, res, next) {
    const scope = oauth.request(toHttpRequest(req), responseCookies(res));
    req.oauth = scope.context;
    (req as WithScope)[SCOPE] = scope;
    // Synchronous for every other request: no promise for Express to wait on, nothing more to run.
    if (!scope.isLoginRoute) {
      next();
      return;
    }
    scope
      .route()
      .then((result) => (result ? send(res, result) : next()))
      .catch(next);
  };
}

/**
 * Lets the request through when a token for `provider` can be had (refreshing it if due).
 * Otherwise browsers are redirected to the login route with `returnTo`, other clients get 401 JSON.
 *
 * @example
 * ```ts
 * app.get('/repos', requireToken('github'), handler);
 * ```
 */
export function requireToken(provider: string): RequestHandler {
  return async function requireToken(req, res, next) {
    const scope = (req as WithScope)[SCOPE];
    if (!scope) {
      next(new OAuthError('config_invalid', 'requireToken() needs oauthMiddleware() mounted before it.'));
      return;
    }
    try {
      const result = await scope.guard(provider);
      if (result) send(res, result);
      else next();
    } catch (err) {
      next(err);
    }
  };
}

/**
 * Renders `OAuthError`s: a small page for browsers, JSON for other clients, with the error's status.
 * Other errors go on to the next handler.
 *
 * @example
 * ```ts
 * app.use(oauthErrorHandler()); // after your routes
 * ```
 */
export function oauthErrorHandler(): ErrorRequestHandler {
  return function oauthErrorHandler(err, req, res, next) {
    const rendered = renderError(err, toHttpRequest(req));
    if (!rendered || res.headersSent) {
      next(err);
      return;
    }
    res.status(rendered.status).type(rendered.contentType).send(rendered.body);
  };
}

function toHttpRequest(req: Request): HttpRequest {
  // `baseUrl`: where the app mounted us (`app.use('/api', oauthMiddleware(...))`), '' at the root.
  return { method: req.method, url: req.originalUrl, headers: req.headers, body: req.body, native: req, mountPath: req.baseUrl };
}

function responseCookies(res: Response): ResponseCookies {
  return {
    getSetCookie() {
      const current = res.getHeader('set-cookie');
      return current === undefined ? [] : Array.isArray(current) ? current : [String(current)];
    },
    setSetCookie(values) {
      res.setHeader('set-cookie', values);
    },
    writable: () => !res.headersSent,
  };
}

function send(res: Response, result: RouteResult): void {
  res.status(result.status);
  if (result.location !== undefined) res.location(result.location);
  if (result.json !== undefined) res.json(result.json);
  else res.end();
}
