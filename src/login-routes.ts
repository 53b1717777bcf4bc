/**
 * The login routes (`/:provider/login`, `/callback`, `/logout`) and the guard behind
 * `requireToken`: a browser is sent to log in, any other client told where.
 */
import * as client from 'openid-client';
import { type ResolvedConfig, safeReturnTo } from './config.js';
import { isOAuthError, OAuthError } from './errors.js';
import { header, type HttpRequest, isBrowser, mountPathOf, type RouteResult, wantsJson } from './http.js';
import type { LoginTransactions } from './login-transactions.js';
import type { ProviderSeam } from './provider-seam.js';
import type { LoginChecks, ProviderClient, ProviderDefinition } from './providers/types.js';
import type { RequestSession } from './request-session.js';
import type { OAuthContext } from './request-tokens.js';
import type { RequestCookies } from './session.js';
import { claimsOf, type RefreshCoordinator, toStored } from './tokens.js';

export class LoginRoutes {
  readonly #config: ResolvedConfig;
  readonly #providers: ProviderSeam;
  readonly #transactions: LoginTransactions;
  readonly #coordinator: RefreshCoordinator;

  constructor(config: ResolvedConfig, providers: ProviderSeam, transactions: LoginTransactions, coordinator: RefreshCoordinator) {
    this.#config = config;
    this.#providers = providers;
    this.#transactions = transactions;
    this.#coordinator = coordinator;
  }

  /** Where a login's callback comes back: the same mount path as the login that sent it. */
  #redirectUri(route: Route): string {
    return `${this.#config.baseUrl}${route.mountPath}${this.#config.prefix}/${route.provider}/callback`;
  }

  async #start(route: Route, cookies: RequestCookies): Promise<RouteResult> {
    const { provider: name, query } = route;
    const provider = this.#providers.withBrowserLogin(name);
    const ready = await this.#providers.connect(name);
    const checks: LoginChecks = {
      state: client.randomState(),
      codeVerifier: provider.pkce ? client.randomPKCECodeVerifier() : undefined,
      nonce: provider.nonce ? client.randomNonce() : undefined,
    };
    await this.#transactions.open(
      name,
      checks,
      safeReturnTo(query.get('returnTo')) ?? this.#config.afterLogin,
      cookies,
      route.mountPath,
    );
    const challenge = checks.codeVerifier ? await client.calculatePKCECodeChallenge(checks.codeVerifier) : undefined;
    return { status: 302, location: ready.authorizationUrl(this.#redirectUri(route), checks, challenge).href };
  }

  async #callback(route: Route, session: RequestSession, cookies: RequestCookies): Promise<RouteResult> {
    const { provider: name, query, mountPath } = route;
    const provider = this.#providers.withBrowserLogin(name);
    if (provider.withoutState === 'restart' && this.#transactions.startedAtProvider(query, cookies))
      return { status: 302, location: `${mountPath}${this.loginPath(name)}` };
    const transaction = await this.#transactions.take(name, query, cookies, mountPath);
    const ready = await this.#providers.connect(name);
    checkCallbackParameters(name, query, ready, provider);

    const callbackUrl = new URL(this.#redirectUri(route));
    callbackUrl.search = query.toString();
    const tokens = toStored(await this.#providers.exchangeCode(name, callbackUrl, this.#redirectUri(route), transaction));
    this.#coordinator.revive(name, tokens); // a provider may hand out the same tokens again after a logout
    try {
      await session.renew(name);
      await session.put(name, tokens);
    } catch (err) {
      // Tokens this app cannot keep (too large for its cookies, the store down) are given back,
      // not left granted with nobody holding them.
      await this.#providers.revoke(name, tokens);
      throw err;
    }
    this.#config.hooks.onLogin({ provider: name, claims: claimsOf(tokens) });
    return { status: 302, location: transaction.returnTo };
  }

  async #logout(name: string, request: HttpRequest, query: URLSearchParams, context: OAuthContext): Promise<RouteResult> {
    // SameSite=Lax keeps our cookie off cross-site POSTs, but an app keying tokens by `subject`
    // may authenticate with cookies of its own: refuse what the browser says came from elsewhere.
    const origin = header(request, 'origin');
    if (
      header(request, 'sec-fetch-site') === 'cross-site' ||
      (origin !== undefined && origin !== new URL(this.#config.baseUrl).origin)
    ) {
      throw new OAuthError('cross_site_request', 'Logout is accepted only from this site.', { provider: name });
    }
    await context.logout(name);
    if (wantsJson(request)) return { status: 204 };
    const bodyReturnTo = (request.body as { returnTo?: unknown } | undefined)?.returnTo;
    return { status: 302, location: safeReturnTo(query.get('returnTo') ?? bodyReturnTo) ?? this.#config.afterLogin };
  }

  /** The login route a request asks for (`GET /:provider/login`, `GET /:provider/callback`, `POST /:provider/logout`), if any. */
  match(request: HttpRequest): Route | undefined {
    return matchRoute(this.#config.prefix, request);
  }

  /** Serves a route `match` found. */
  async handle(
    route: Route,
    request: HttpRequest,
    cookies: RequestCookies,
    session: RequestSession,
    context: OAuthContext,
  ): Promise<RouteResult> {
    try {
      switch (route.action) {
        case 'login':
          return await this.#start(route, cookies);
        case 'callback':
          return await this.#callback(route, session, cookies);
        case 'logout':
          return await this.#logout(route.provider, request, route.query, context);
      }
    } catch (err) {
      if (isOAuthError(err)) this.#config.hooks.onError(err);
      throw err;
    }
  }

  /** The login route of a provider, with a `returnTo` when it is a safe local path. */
  loginPath(name: string, returnTo?: string): string {
    const safe = safeReturnTo(returnTo);
    const base = `${this.#config.prefix}/${encodeURIComponent(name)}/login`;
    return safe === undefined ? base : `${base}?returnTo=${encodeURIComponent(safe)}`;
  }

  /**
   * What `requireToken` answers: undefined when a token can be had (refreshed if due); else a
   * 302 to the login route for browsers, a 401 JSON body for any other client.
   * Errors other than `not_connected` and `reauth_required` are thrown.
   */
  async guard(oauth: OAuthContext, name: string, request: HttpRequest): Promise<RouteResult | undefined> {
    try {
      await oauth.getToken(name);
      return undefined;
    } catch (err) {
      if (!isOAuthError(err) || (err.code !== 'not_connected' && err.code !== 'reauth_required')) throw err;
      // No login to send anyone to: only the app can connect such a provider again.
      if (!this.#providers.definition(name).browserLogin) return { status: 401, json: { error: err.code, provider: name } };
      // The login route where the adapter serves it: below the same mount path as this request's.
      const login = `${mountPathOf(request) ?? ''}${this.loginPath(name, request.url)}`;
      if (isBrowser(request)) return { status: 302, location: login };
      return { status: 401, json: { error: err.code, provider: name, login } };
    }
  }
}

/** RFC 9207 and the `error` parameter, checked before any code is exchanged. */
function checkCallbackParameters(
  name: string,
  query: URLSearchParams,
  ready: ProviderClient,
  provider: ProviderDefinition,
): void {
  const invalid = (why: string) => new OAuthError('invalid_callback', why, { provider: name });
  // A repeated `state` never gets here: LoginTransactions.take matches exactly one.
  for (const param of ['code', 'iss', 'error']) {
    if (query.getAll(param).length > 1) throw invalid(`The callback repeats the ${param} parameter.`);
  }
  const iss = query.get('iss');
  if (iss !== null && ready.issuer !== undefined && iss !== ready.issuer) {
    throw invalid('The callback comes from another issuer than the one this login was sent to.');
  }
  if (iss === null && ready.issRequired) throw invalid('The callback lacks the iss parameter its issuer promises.');
  const error = query.get('error');
  if (error !== null) {
    const options = {
      provider: name,
      error: error.slice(0, 100),
      errorDescription: query.get('error_description')?.slice(0, 500),
    };
    if (provider.deniedErrors.includes(error) || error === 'access_denied') {
      throw new OAuthError('access_denied', 'The sign-in was declined.', options);
    }
    throw new OAuthError('provider_error', 'The provider could not complete the sign-in.', options);
  }
  const code = query.get('code');
  if (!code) throw invalid('The callback carries no authorization code.');
  // RFC 6749 Appendix A.11: a code is printable ASCII. Anything else is not one (and could not be
  // sent in a header, where Cal.com's exchange puts it).
  if (!/^[\x20-\x7e]+$/.test(code)) throw invalid('The authorization code has characters no code can have.');
}

type Action = 'login' | 'callback' | 'logout';
const ROUTE_METHODS: Readonly<Record<Action, readonly string[]>> = {
  login: ['GET', 'HEAD'],
  callback: ['GET'],
  logout: ['POST'],
};

/** A login route a request asked for: the provider named in its path, the action, the query. */
export interface Route {
  provider: string;
  action: Action;
  query: URLSearchParams;
  /** The path the adapter is mounted below ('' at the root). */
  mountPath: string;
}

function matchRoute(configuredPrefix: string, request: HttpRequest): Route | undefined {
  const mountPath = mountPathOf(request);
  if (mountPath === undefined) return undefined;
  const prefix = `${mountPath}${configuredPrefix}`;
  if (!request.url.startsWith(`${prefix}/`)) return undefined;
  const url = URL.parse(request.url, 'http://local.invalid');
  // The path as resolved (dot segments gone) must still be under the prefix: `/auth/../x/login` is not ours.
  if (!url?.pathname.startsWith(`${prefix}/`)) return undefined;
  const rest = url.pathname.slice(prefix.length + 1).split('/');
  if (rest.length !== 2) return undefined;
  const [encoded, action] = rest as [string, string];
  if (!Object.hasOwn(ROUTE_METHODS, action)) return undefined;
  if (!ROUTE_METHODS[action as Action].includes(request.method.toUpperCase())) return undefined;
  let provider: string;
  try {
    provider = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  return { provider, action: action as Action, query: url.searchParams, mountPath };
}
