/**
 * The state machine: start (login), callback, refresh and revoke, on plain request objects.
 * Adapters translate their framework's request into an `HttpRequest` and apply the result.
 */

import { type OAuthConfig, resolveConfig, type VisibleConfig, visibleConfig } from './config.js';
import { OAuthError } from './errors.js';
import { header, type HttpRequest, type RouteResult } from './http.js';
import { LoginRoutes } from './login-routes.js';
import { LoginTransactions } from './login-transactions.js';
import { ProviderSeam } from './provider-seam.js';
import { Refresher } from './refresher.js';
import { RequestSession } from './request-session.js';
import { type OAuthContext, RequestTokens, type TokenParts } from './request-tokens.js';
import { RequestCookies as Cookies, type RequestCookies, type ResponseCookies, Sealer, type SealStats } from './session.js';
import { RefreshCoordinator } from './tokens.js';

export type { OAuthContext } from './request-tokens.js';

/**
 * The framework-neutral core. Adapters call `handle` for every request and give `context` to the app.
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
  /** Serves `GET /:provider/login`, `GET /:provider/callback` and `POST /:provider/logout`; undefined for any other request. */
  handle(request: HttpRequest, response: ResponseCookies): Promise<RouteResult | undefined>;
  /** The per-request API. Nothing is read until one of its methods is called. */
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

  function context(request: HttpRequest, response: ResponseCookies): OAuthContext {
    return new RequestTokens(parts, requestSession(request, new Cookies(header(request, 'cookie'), response)));
  }

  function requestSession(request: HttpRequest, cookies: RequestCookies): RequestSession {
    const { subject } = config;
    return new RequestSession(config, sealer, {
      cookies,
      subject: subject ? async () => subjectKey(await subject(request.native)) : undefined,
    });
  }

  function tokens(subject: string): OAuthContext {
    // A subject comes with a server-side store: resolveConfig refuses it with the cookie store.
    if (!config.subject) {
      throw new OAuthError('config_invalid', 'oauth.tokens() needs the subject option and a server-side store.', {
        field: 'subject',
      });
    }
    if (typeof subject !== 'string' || subject === '') throw new OAuthError('not_connected', 'No such user.');
    return new RequestTokens(parts, new RequestSession(config, sealer, { subject: async () => subject }));
  }

  async function handle(request: HttpRequest, response: ResponseCookies): Promise<RouteResult | undefined> {
    const cookies = new Cookies(header(request, 'cookie'), response);
    const session = requestSession(request, cookies);
    return routes.handle(request, cookies, session, new RequestTokens(parts, session));
  }

  return {
    config: visibleConfig(config),
    stats: sealer.stats,
    handle,
    context,
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
