/**
 * The one place that reads raw configuration: validates it, applies defaults and freezes it.
 */
import { OAuthError } from './errors.js';
import { insecureScheme } from './loopback.js';
import type { ProviderDefinition } from './providers/types.js';
import type { Secret } from './session.js';
import { cookieStore } from './stores/cookie.js';
import type { TokenStore } from './stores/types.js';

/** Callbacks for audit and metrics, sync or async. They are awaited nowhere and their failures (thrown or rejected) are ignored. */
export interface OAuthHooks {
  onLogin?(event: { provider: string; claims?: Record<string, unknown> | undefined }): void;
  onRefresh?(event: { provider: string }): void;
  onLogout?(event: { provider: string }): void;
  /** Failures the library recovered from (a failed revocation, a cookie it could no longer set). */
  onError?(error: unknown): void;
}

/**
 * Configuration of `createOAuth` and of the adapters' `oauthMiddleware`.
 *
 * @example
 * ```ts
 * const config: OAuthConfig = {
 *   baseUrl: 'https://app.example.com',
 *   secret: process.env.OAUTH_SECRET!,
 *   providers: { google: oidc({ issuer: 'https://accounts.google.com', clientId, clientSecret }) },
 * };
 * ```
 */
export interface OAuthConfig {
  /** Public origin of the app (and path, if mounted below one); redirect_uri = baseUrl + prefix + '/:provider/callback'. */
  baseUrl: string;
  /** At least 32 characters; or `{ 1: 'old', 2: 'new' }` to rotate (the highest id seals, all unseal). */
  secret: Secret;
  /** Where the login routes are mounted. Default `/auth`. */
  prefix?: string | undefined;
  /** Where to land after login when no `returnTo` was given. Default `/`. */
  afterLogin?: string | undefined;
  providers: Readonly<Record<string, ProviderDefinition>>;
  /** Default `cookieStore()`. */
  store?: TokenStore | undefined;
  /** Refresh when `expiresAt - now <= refreshSkewSeconds`. Default 60. */
  refreshSkewSeconds?: number | undefined;
  hooks?: OAuthHooks | undefined;
  /**
   * Keys server-side tokens by app user instead of by browser: return the signed-in user's id
   * (Express passes `req`, Koa passes `ctx`), or undefined to fall back to the browser session.
   * Tokens then survive a new browser and `oauth.tokens(userId)` reaches them outside requests.
   * Needs a server-side store.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the framework's own request type, whichever it is
  subject?: ((request: any) => string | undefined | Promise<string | undefined>) | undefined;
  /** Name of the session cookie. Default `oauth_session`. */
  cookieName?: string | undefined;
  /** Lifetime of the session cookie, renewed on every write. Default 30 days. */
  sessionMaxAgeSeconds?: number | undefined;
}

export interface ResolvedConfig {
  readonly baseUrl: string;
  readonly secret: Secret;
  readonly prefix: string;
  readonly afterLogin: string;
  readonly providers: Readonly<Record<string, ProviderDefinition>>;
  readonly store: TokenStore;
  readonly refreshSkewSeconds: number;
  /** The configured hooks, wrapped so that a throwing hook never breaks a request. */
  readonly hooks: Required<OAuthHooks>;
  readonly subject: ((request: unknown) => string | undefined | Promise<string | undefined>) | undefined;
  readonly cookieName: string;
  readonly sessionMaxAgeSeconds: number;
  /** Cookies are `Secure` exactly when the base URL is https. */
  readonly secureCookies: boolean;
}

/** What `oauth.config` shows: the resolved configuration, its secret left out. */
export type VisibleConfig = Readonly<Omit<ResolvedConfig, 'secret'>>;

/** The configuration without its secret, which nothing outside the core needs to read. */
export function visibleConfig(config: ResolvedConfig): VisibleConfig {
  const { secret: _secret, ...visible } = config;
  return Object.freeze(visible);
}

const PROVIDER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/i;
const COOKIE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function invalid(field: string, reason: string): OAuthError {
  return new OAuthError('config_invalid', `Invalid configuration: ${field} ${reason}.`, { field });
}

/** Validates and freezes a configuration; throws `config_invalid` naming the first bad field. */
export function resolveConfig(config: OAuthConfig): ResolvedConfig {
  if (!config || typeof config !== 'object') throw invalid('config', 'must be an object');

  const baseUrl = checkBaseUrl(config.baseUrl);
  const secret = checkSecret(config.secret);

  const prefix = config.prefix ?? '/auth';
  if (typeof prefix !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    throw invalid('prefix', "must be a path such as '/auth' (leading slash, no trailing slash)");
  }

  const afterLogin = config.afterLogin ?? '/';
  if (safeReturnTo(afterLogin) === undefined) throw invalid('afterLogin', "must be a local path starting with a single '/'");

  if (!config.providers || typeof config.providers !== 'object' || Object.keys(config.providers).length === 0) {
    throw invalid('providers', 'must name at least one provider');
  }
  for (const [name, provider] of Object.entries(config.providers)) {
    if (!PROVIDER_NAME.test(name)) throw invalid(`providers.${name}`, 'must be named with letters, digits, - and _ only');
    if (!provider || typeof provider.connect !== 'function' || typeof provider.problems !== 'function') {
      throw invalid(`providers.${name}`, 'must be made by a provider factory such as oidc() or oauth2()');
    }
    const [problem] = provider.problems();
    if (problem) throw invalid(`providers.${name}.${problem[0]}`, problem[1]);
  }

  const store = config.store ?? cookieStore();
  if (!store || (store.kind !== 'cookie' && store.kind !== 'server') || (store.kind === 'cookie' && !(store.maxChunks >= 1))) {
    throw invalid('store', 'must be made by cookieStore(), memoryStore() or another store factory');
  }

  if (config.subject !== undefined && typeof config.subject !== 'function')
    throw invalid('subject', 'must be a function of the request');
  if (config.subject && store.kind !== 'server') {
    throw invalid(
      'subject',
      'needs a server-side store (memoryStore() or redisStore()): cookies cannot be shared between browsers',
    );
  }

  const refreshSkewSeconds = config.refreshSkewSeconds ?? 60;
  if (!Number.isFinite(refreshSkewSeconds) || refreshSkewSeconds < 0)
    throw invalid('refreshSkewSeconds', 'must be a number >= 0');

  // __Host-: over https, a cookie only this exact origin can set (no sibling subdomain can plant a session).
  const cookieName = config.cookieName ?? (baseUrl.startsWith('https:') ? '__Host-oauth_session' : 'oauth_session');
  if (!COOKIE_NAME.test(cookieName)) throw invalid('cookieName', 'must use letters, digits, - and _ only');

  const sessionMaxAgeSeconds = config.sessionMaxAgeSeconds ?? 30 * 24 * 3600;
  if (!Number.isInteger(sessionMaxAgeSeconds) || sessionMaxAgeSeconds <= 0) {
    throw invalid('sessionMaxAgeSeconds', 'must be a positive integer');
  }

  return Object.freeze({
    baseUrl,
    secret,
    prefix,
    afterLogin,
    providers: Object.freeze({ ...config.providers }),
    store,
    refreshSkewSeconds,
    hooks: Object.freeze(safeHooks(config.hooks ?? {})),
    subject: config.subject,
    cookieName,
    sessionMaxAgeSeconds,
    secureCookies: baseUrl.startsWith('https:'),
  });
}

function checkBaseUrl(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalid('baseUrl', 'is required');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('baseUrl', 'is not an absolute URL');
  }
  const scheme = insecureScheme(url);
  if (scheme !== undefined) throw invalid('baseUrl', scheme);
  if (url.search || url.hash || url.username || url.password)
    throw invalid('baseUrl', 'must not carry a query, fragment or credentials');
  return url.href.replace(/\/+$/, '');
}

function checkSecret(value: unknown): Secret {
  if (typeof value === 'string') {
    if (value.length < 32) throw invalid('secret', 'must be at least 32 characters');
    return value;
  }
  if (!value || typeof value !== 'object') throw invalid('secret', 'is required (at least 32 characters)');
  const entries = Object.entries(value);
  if (entries.length === 0) throw invalid('secret', 'must hold at least one password');
  for (const [id, password] of entries) {
    if (!/^\d+$/.test(id)) throw invalid(`secret.${id}`, 'must be keyed by a number (the newest, highest id seals)');
    if (typeof password !== 'string' || password.length < 32) throw invalid(`secret.${id}`, 'must be at least 32 characters');
  }
  return Object.freeze({ ...(value as Record<string, string>) });
}

/**
 * A `returnTo` is followed only when it is a local path: one leading '/', no '//' or '\',
 * no scheme, no control characters. Anything else gives undefined (the caller falls back).
 */
export function safeReturnTo(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return undefined;
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return undefined;
  // Stryker disable next-line MethodExpression: a quick refusal; the resolved origin below refuses `//host` too
  if (!value.startsWith('/') || value.startsWith('//')) return undefined;
  // Resolve as a browser would (dot segments, percent-encoded dots): the result must still be a
  // local path, checked again after normalising, since `/..//evil.example` normalises to `//evil.example`.
  const resolved = URL.parse(value, 'http://local.invalid');
  // Defence in depth: after the checks above no value resolves elsewhere, and every path starts with '/'.
  // Stryker disable next-line ConditionalExpression: see above
  if (!resolved || resolved.origin !== 'http://local.invalid') return undefined;
  const path = resolved.pathname + resolved.search + resolved.hash;
  // Stryker disable next-line StringLiteral: see above
  if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\')) return undefined;
  return path;
}
function safeHooks(hooks: OAuthHooks): Required<OAuthHooks> {
  const wrap =
    <E>(fn: ((event: E) => unknown) | undefined) =>
    (event: E) => {
      // A failing audit hook, sync or async, must not fail a login or a request (nor crash the process).
      try {
        Promise.resolve(fn?.(event)).catch(() => undefined);
      } catch {
        // ignored, as above
      }
    };
  return {
    onLogin: wrap(hooks.onLogin),
    onRefresh: wrap(hooks.onRefresh),
    onLogout: wrap(hooks.onLogout),
    onError: wrap(hooks.onError),
  };
}
