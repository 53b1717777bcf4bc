/**
 * The core's wiring: `createOAuth` builds its parts (the provider seam, logins in flight, refresh
 * coordination, the login routes) once, and one `OAuthRequest` per request over them. Adapters
 * translate their framework's request into an `HttpRequest` and apply the results.
 */

import { type OAuthConfig, resolveConfig, type VisibleConfig, visibleConfig } from './config.js';
import { OAuthError } from './errors.js';
import { header, type HttpRequest, type RouteResult } from './http.js';
import { LoginRoutes } from './login-routes.js';
import { LoginTransactions } from './login-transactions.js';
import { ProviderSeam } from './provider-seam.js';
import { Refresher } from './refresher.js';
import { openSession, type RequestSession } from './request-session.js';
import { type OAuthContext, RequestTokens, type TokenParts } from './request-tokens.js';
import { RequestCookies as Cookies, type RequestCookies, type ResponseCookies, Sealer, type SealStats } from './session.js';
import { RefreshCoordinator } from './tokens.js';

export type { OAuthContext } from './request-tokens.js';

/**
 * One request, translated once: its login route, `req.oauth` and `requireToken` share one session
 * (the Cookie header is parsed once, each store record read once).
 */
export interface OAuthRequest {
  /** The per-request token API (`req.oauth`): nothing is read until one of its methods is called. */
  readonly context: OAuthContext;
  /**
   * Whether this request is one of the login routes (`/:provider/login`, `/callback`, `/logout`).
   * When false, `route()` answers undefined: an adapter may pass the request on at once.
   */
  readonly isLoginRoute: boolean;
  /** Serves this request when it is a login route; undefined for any other. */
  route(): Promise<RouteResult | undefined>;
  /**
   * What `requireToken(provider)` answers: undefined when a token can be had (refreshed if due);
   * else a 302 to the login route for browsers, a 401 JSON body for any other client. Errors other
   * than `not_connected` and `reauth_required` are thrown.
   */
  guard(provider: string): Promise<RouteResult | undefined>;
}

/**
 * The framework-neutral core. Adapters call `request` once per request, send what its `route()`
 * answers, and give its `context` to the app.
 *
 * @example
 * ```ts
 * const oauth = createOAuth({ baseUrl, secret, providers: { google: oidc({ ... }) } });
 * ```
 */
export interface OAuth {
  /** The resolved configuration, without its secret. */
  readonly config: VisibleConfig;
  /** Seal and unseal counts of this process, for metrics and tests. */
  readonly stats: Readonly<SealStats>;
  /** One request's view of the core: what adapters use. */
  request(request: HttpRequest, response: ResponseCookies): OAuthRequest;
  /** `request(request, response).route()`. */
  handle(request: HttpRequest, response: ResponseCookies): Promise<RouteResult | undefined>;
  /** `request(request, response).context`. */
  context(request: HttpRequest, response: ResponseCookies): OAuthContext;
  /**
   * The tokens of one app user, outside any request (jobs, queues), with the same refresh
   * guarantees. Needs the `subject` option and a server-side store.
   *
   * @example
   * ```ts
   * const { accessToken } = await oauth.tokens(userId).getToken('github');
   * ```
   */
  tokens(subject: string): OAuthContext;
  /** The login route of a provider, with a `returnTo` when it is a safe local path. */
  loginPath(provider: string, returnTo?: string): string;
  /**
   * What `requireToken` answers: undefined when a token can be had (refreshed if due); else a
   * 302 to the login route for browsers, a 401 JSON body for any other client.
   * Errors other than `not_connected` and `reauth_required` are thrown.
   */
  guard(context: OAuthContext, provider: string, request: HttpRequest): Promise<RouteResult | undefined>;
}

/**
 * Creates the core from a configuration, validating it first.
 * Throws `OAuthError` `config_invalid` naming the field at fault.
 */
export function createOAuth(input: OAuthConfig): OAuth {
  const config = resolveConfig(input);
  const sealer = new Sealer(config.secret);
  const refreshes = new RefreshCoordinator();
  const hooks = config.hooks;
  const providers = new ProviderSeam(config.providers, hooks);
  const transactions = new LoginTransactions(config, sealer, providers);
  const refresher = new Refresher(config, providers, refreshes);
  const parts: TokenParts = { config, providers, refresher, coordinator: refreshes };
  const routes = new LoginRoutes(config, providers, transactions, refreshes);

  function request(httpRequest: HttpRequest, response: ResponseCookies): OAuthRequest {
    const cookies = new Cookies(header(httpRequest, 'cookie'), response);
    const session = requestSession(httpRequest, cookies);
    const context = new RequestTokens(parts, session);
    const matched = routes.match(httpRequest);
    return {
      context,
      isLoginRoute: matched !== undefined,
      route: async () => (matched ? routes.handle(matched, httpRequest, cookies, session, context) : undefined),
      guard: (provider) => routes.guard(context, provider, httpRequest),
    };
  }

  function requestSession(request: HttpRequest, cookies: RequestCookies): RequestSession {
    const { subject } = config;
    const source = { cookies, subject: subject ? async () => subjectKey(await subject(request.native)) : undefined };
    return openSession(config, sealer, source, refreshes);
  }

  function tokens(subject: string): OAuthContext {
    // A subject comes with a server-side store: resolveConfig refuses it with the cookie store.
    if (!config.subject) {
      throw new OAuthError('config_invalid', 'oauth.tokens() needs the subject option and a server-side store.', {
        field: 'subject',
      });
    }
    if (typeof subject !== 'string' || subject === '') throw new OAuthError('not_connected', 'No such user.');
    return new RequestTokens(parts, openSession(config, sealer, { subject: async () => subject }, refreshes));
  }

  return {
    config: visibleConfig(config),
    stats: sealer.stats,
    request,
    handle: (httpRequest, response) => request(httpRequest, response).route(),
    context: (httpRequest, response) => request(httpRequest, response).context,
    tokens,
    loginPath: (name, returnTo) => routes.loginPath(name, returnTo),
    guard: (context, name, request) => routes.guard(context, name, request),
  };
}

/**
 * The app's user id as a store key part; anything else (an empty string, an object) means "no user",
 * so that a buggy `subject` can never put every visitor under one shared key.
 */
function subjectKey(value: unknown): string | undefined {
  if (Number.isFinite(value)) return String(value); // a finite number: Number.isFinite does not coerce
  return typeof value === 'string' && value !== '' ? value : undefined;
}
