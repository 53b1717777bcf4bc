/**
 * The state machine: start (login), callback, refresh and revoke, on plain request objects.
 * Adapters translate their framework's request into an `HttpRequest` and apply the result.
 */

import * as client from 'openid-client';
import { type OAuthConfig, resolveConfig, safeReturnTo, type VisibleConfig, visibleConfig } from './config.js';
import { isOAuthError, OAuthError } from './errors.js';
import { header, type HttpRequest, isBrowser, type RouteResult, wantsJson } from './http.js';
import { LoginTransactions } from './login-transactions.js';
import { ProviderSeam } from './provider-seam.js';
import type { LoginChecks, ProviderClient, ProviderDefinition } from './providers/types.js';
import { Refresher } from './refresher.js';
import { RequestSession } from './request-session.js';
import { type OAuthContext, RequestTokens, type TokenParts } from './request-tokens.js';
import { RequestCookies as Cookies, type RequestCookies, type ResponseCookies, Sealer, type SealStats } from './session.js';
import type { StoredTokens } from './stores/types.js';
import { RefreshCoordinator, toStored } from './tokens.js';

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

  function redirectUri(name: string): string {
    return `${config.baseUrl}${config.prefix}/${name}/callback`;
  }

  async function start(name: string, query: URLSearchParams, cookies: RequestCookies): Promise<RouteResult> {
    const provider = providers.withBrowserLogin(name);
    const ready = await providers.connect(name);
    const checks: LoginChecks = {
      state: client.randomState(),
      codeVerifier: provider.pkce ? client.randomPKCECodeVerifier() : undefined,
      nonce: provider.nonce ? client.randomNonce() : undefined,
    };
    await transactions.open(name, checks, safeReturnTo(query.get('returnTo')) ?? config.afterLogin, cookies);
    const challenge = checks.codeVerifier ? await client.calculatePKCECodeChallenge(checks.codeVerifier) : undefined;
    return { status: 302, location: ready.authorizationUrl(redirectUri(name), checks, challenge).href };
  }

  async function callback(
    name: string,
    query: URLSearchParams,
    session: RequestSession,
    cookies: RequestCookies,
  ): Promise<RouteResult> {
    const provider = providers.withBrowserLogin(name);
    if (provider.withoutState === 'restart' && transactions.startedAtProvider(query, cookies))
      return { status: 302, location: loginPath(name) };
    const transaction = await transactions.take(name, query, cookies);
    const ready = await providers.connect(name);
    checkCallbackParameters(name, query, ready, provider);

    const callbackUrl = new URL(redirectUri(name));
    callbackUrl.search = query.toString();
    let tokens: StoredTokens;
    let claims: Record<string, unknown> | undefined;
    try {
      const response = await ready.exchangeCode(callbackUrl, redirectUri(name), transaction);
      tokens = toStored(response);
      claims = response.claims;
    } catch (err) {
      throw providers.error(err, name, [query.get('code') ?? undefined, transaction.codeVerifier, transaction.nonce]);
    }
    refreshes.revive(name, tokens); // a provider may hand out the same tokens again after a logout
    try {
      await session.renew(name);
      await session.put(name, tokens);
    } catch (err) {
      // Tokens this app cannot keep (too large for its cookies, the store down) are given back,
      // not left granted with nobody holding them.
      await providers.revoke(name, tokens);
      throw err;
    }
    hooks.onLogin({ provider: name, claims });
    return { status: 302, location: transaction.returnTo };
  }

  async function logout(name: string, request: HttpRequest, query: URLSearchParams, context: OAuthContext): Promise<RouteResult> {
    // SameSite=Lax keeps our cookie off cross-site POSTs, but an app keying tokens by `subject`
    // may authenticate with cookies of its own: refuse what the browser says came from elsewhere.
    const origin = header(request, 'origin');
    if (
      header(request, 'sec-fetch-site') === 'cross-site' ||
      (origin !== undefined && origin !== new URL(config.baseUrl).origin)
    ) {
      throw new OAuthError('cross_site_request', 'Logout is accepted only from this site.', { provider: name });
    }
    await context.logout(name);
    if (wantsJson(request)) return { status: 204 };
    const bodyReturnTo = (request.body as { returnTo?: unknown } | undefined)?.returnTo;
    return { status: 302, location: safeReturnTo(query.get('returnTo') ?? bodyReturnTo) ?? config.afterLogin };
  }

  function context(request: HttpRequest, response: ResponseCookies): OAuthContext {
    return new RequestTokens(parts, requestSession(request, response));
  }

  function requestSession(request: HttpRequest, response: ResponseCookies): RequestSession {
    const cookies = new Cookies(header(request, 'cookie'), response);
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
    const route = matchRoute(config.prefix, request);
    if (!route) return undefined;
    try {
      const cookies = new Cookies(header(request, 'cookie'), response);
      const session = requestSession(request, response);
      switch (route.action) {
        case 'login':
          return await start(route.provider, route.query, cookies);
        case 'callback':
          return await callback(route.provider, route.query, session, cookies);
        case 'logout':
          return await logout(route.provider, request, route.query, new RequestTokens(parts, session));
      }
    } catch (err) {
      if (isOAuthError(err)) hooks.onError(err);
      throw err;
    }
  }

  function loginPath(name: string, returnTo?: string): string {
    const safe = safeReturnTo(returnTo);
    const base = `${config.prefix}/${encodeURIComponent(name)}/login`;
    return safe === undefined ? base : `${base}?returnTo=${encodeURIComponent(safe)}`;
  }

  async function guardRoute(oauth: OAuthContext, name: string, request: HttpRequest): Promise<RouteResult | undefined> {
    try {
      await oauth.getToken(name);
      return undefined;
    } catch (err) {
      if (!isOAuthError(err) || (err.code !== 'not_connected' && err.code !== 'reauth_required')) throw err;
      // No login to send anyone to: only the app can connect such a provider again.
      if (!providers.definition(name).browserLogin) return { status: 401, json: { error: err.code, provider: name } };
      const login = loginPath(name, request.url);
      if (isBrowser(request)) return { status: 302, location: login };
      return { status: 401, json: { error: err.code, provider: name, login } };
    }
  }

  return { config: visibleConfig(config), stats: sealer.stats, handle, context, tokens, loginPath, guard: guardRoute };
}

/** RFC 9207 and the `error` parameter, checked before any code is exchanged. */
function checkCallbackParameters(
  name: string,
  query: URLSearchParams,
  ready: ProviderClient,
  provider: ProviderDefinition,
): void {
  const invalid = (why: string) => new OAuthError('invalid_callback', why, { provider: name });
  // A repeated `state` never gets here: readTransaction matches exactly one.
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

function matchRoute(
  prefix: string,
  request: HttpRequest,
): { provider: string; action: Action; query: URLSearchParams } | undefined {
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
  return { provider, action: action as Action, query: url.searchParams };
}

/**
 * The app's user id as a store key part; anything else (an empty string, an object) means "no user",
 * so that a buggy `subject` can never put every visitor under one shared key.
 */
function subjectKey(value: unknown): string | undefined {
  if (Number.isFinite(value)) return String(value); // a finite number: Number.isFinite does not coerce
  return typeof value === 'string' && value !== '' ? value : undefined;
}
