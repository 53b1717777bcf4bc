import * as client from 'openid-client';
import { OAuthError } from '../errors.js';
import { commonProblems, urlProblems } from './oidc.js';
import { isLoopback } from '../loopback.js';
import { call, openIdClient } from './openid.js';
import type { PresetOptions, ProviderProfile, RevokeProfile, TokenInfoProfile } from './profile.js';
import type { ProviderClient, ProviderDefinition } from './types.js';
import {
  basicCredentials,
  dialectFetch,
  isDnsLabel,
  readTokenInfo,
  recoverTokens,
  standardAnswer,
  type WireSettings,
} from './wire.js';

const WITHOUT_STATE = {
  always: 'refuse',
  optional: 'newest-login',
  restart: 'restart',
} as const satisfies Record<NonNullable<ProviderProfile['authorization']['state']>, ProviderDefinition['withoutState']>;

/**
 * A provider from a profile and the app's credentials. Every preset is made this way, and so is a
 * provider this library has no preset for.
 *
 * @example
 * ```ts
 * const acme = fromProfile(
 *   { name: 'acme', authorization: { url: 'https://acme.example/oauth/authorize', pkce: false },
 *     token: { url: 'https://acme.example/oauth/token', encoding: 'json', clientAuth: { in: 'body', secret: 'client_secret' } },
 *     response: { envelope: 'data', accessToken: 'accessToken', expiry: { kind: 'epoch-ms', path: 'expiresAt' } } },
 *   { clientId, clientSecret },
 * );
 * ```
 */
export function fromProfile(
  described: ProviderProfile,
  options: PresetOptions,
  defaults: ProfileDefaults = {},
): ProviderDefinition {
  // Without `oidc` there is no issuer to check an ID token against: one that comes anyway is
  // dropped, never handed to the app as validated claims.
  const profile: ProviderProfile = described.oidc
    ? described
    : { ...described, response: { ...described.response, idToken: false } };
  const endpoints = profileEndpoints(profile, options, defaults.values);
  const scopes = options.scopes ?? defaults.scopes ?? [];
  let ready: ProviderClient | undefined;

  return {
    clientId: options.clientId,
    scopes,
    pkce: profile.authorization.pkce ?? true,
    nonce: profile.oidc !== undefined && scopes.includes('openid'),
    browserLogin: endpoints.urls.authorization !== undefined,
    timeoutSeconds: options.timeoutSeconds ?? 10,
    // Stryker disable next-line ArrayDeclaration,StringLiteral: the flow reads access_denied as a decline whatever this lists.
    deniedErrors: ['access_denied', ...(profile.authorization.deniedErrors ?? [])],
    withoutState: WITHOUT_STATE[profile.authorization.state ?? 'always'],
    expiredStatuses: profile.expiredStatuses ?? [401],
    problems: () => profileProblems(profile, options, endpoints, scopes),
    async connect() {
      ready ??= connectProfile(profile, options, endpoints, scopes, defaults.transport);
      return ready;
    },
  };
}

interface ProfileDefaults {
  scopes?: readonly string[];
  /** Placeholder values the preset's options fix for every URL (Sunshine's `subdomain`): DNS labels. */
  values?: Readonly<Record<string, string | undefined>>;
  /**
   * Wraps the dialect fetch that token and refresh requests go through. Default: none. The
   * Microsoft preset keeps each answer to validate it against the issuer of the tenant it names.
   */
  transport?: (dialect: client.CustomFetch) => client.CustomFetch;
}

/** A profile's URLs as the options override them, with the placeholders filled that can be. */
interface ProfileEndpoints {
  urls: WireSettings['urls'] & { authorization: string | undefined };
  tokenInfoUrl: string | undefined;
  /** Placeholder values fixed by the options, given or not (a given one may be no DNS label). */
  values: ReadonlyArray<[string, string]>;
  fill: (url: string | undefined) => string | undefined;
}

function profileEndpoints(profile: ProviderProfile, options: PresetOptions, given: ProfileDefaults['values']): ProfileEndpoints {
  const values = Object.entries(given ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined);
  const fill = (url: string | undefined) =>
    values.reduce(
      (filled, [name, value]) => (isDnsLabel(value) ? filled?.replaceAll(`{${name}}`, value) : filled),
      url?.replaceAll('{clientId}', encodeURIComponent(options.clientId ?? '')),
    );
  const urls = {
    authorization: fill(options.endpoints?.authorization ?? profile.authorization.url),
    token: fill(options.endpoints?.token ?? profile.token.url) as string,
    refresh: fill(
      options.endpoints?.refresh ??
        (profile.refresh ? profile.refresh.url : undefined) ??
        options.endpoints?.token ??
        profile.token.url,
    ) as string,
    revoke: fill(options.endpoints?.revoke ?? profile.revoke?.url),
  };
  return { urls, tokenInfoUrl: fill(options.endpoints?.tokenInfo ?? profile.tokenInfo?.url), values, fill };
}

function profileProblems(
  profile: ProviderProfile,
  options: PresetOptions,
  { urls, tokenInfoUrl, values, fill }: ProfileEndpoints,
  scopes: readonly string[],
): Array<[string, string]> {
  // A refresh sends the token request's credentials unless the profile says otherwise.
  const refreshAuth = profile.refresh ? (profile.refresh.clientAuth ?? profile.token.clientAuth) : profile.token.clientAuth;
  const needsSecret = [profile.token.clientAuth, refreshAuth].some((auth) => auth?.in !== 'none');
  return [
    ...(urls.authorization === undefined ? [] : urlProblems('endpoints.authorization', urls.authorization)),
    ...urlProblems('endpoints.token', urls.token),
    ...urlProblems('endpoints.refresh', urls.refresh),
    ...(urls.revoke === undefined ? [] : urlProblems('endpoints.revoke', urls.revoke)),
    ...(tokenInfoUrl === undefined ? [] : urlProblems('endpoints.tokenInfo', tokenInfoUrl)),
    ...values
      .filter(([, value]) => !isDnsLabel(value))
      .map(([name]): [string, string] => [name, 'must be a DNS label: letters, digits and inner hyphens, 63 at most']),
    ...unfilledPlaceholders({
      'endpoints.authorization': urls.authorization,
      'endpoints.token': urls.token,
      'endpoints.refresh': urls.refresh,
      'endpoints.tokenInfo': tokenInfoUrl,
      // A revocation request fills the rest from each login's extras; RFC 7009's URL is fixed.
      'endpoints.revoke': profile.revoke?.kind === 'request' ? undefined : urls.revoke,
    }),
    ...headerProblems(profile, options.headers),
    ...strandedEndpoints(profile, options.endpoints, fill),
    ...commonProblems({ ...options, tokenEndpointAuthMethod: needsSecret ? 'client_secret_basic' : 'none' }),
    ...(profile.authorization.omit?.includes('scope') && scopes.length > 0
      ? [['scopes', "are chosen in the provider's app settings: it refuses a scope parameter"] as [string, string]]
      : []),
    ...(profile.authorization.scopesRequired && scopes.length === 0
      ? [['scopes', `are required: ${profile.name} refuses a login without them`] as [string, string]]
      : []),
  ];
}

/** The profile's client: openid-client's Configuration over the dialect fetch, with the profile's own requests. */
function connectProfile(
  profile: ProviderProfile,
  options: PresetOptions,
  { urls, tokenInfoUrl, fill }: ProfileEndpoints,
  scopes: readonly string[],
  transport: ProfileDefaults['transport'],
): ProviderClient {
  const metadata: client.ServerMetadata = {
    issuer: profile.oidc?.issuer ?? new URL(urls.authorization ?? urls.token).origin,
    ...(urls.authorization === undefined ? {} : { authorization_endpoint: urls.authorization }),
    token_endpoint: urls.token,
    // Stryker disable next-line ConditionalExpression: another kind of revocation is the profile's own request, never this endpoint.
    ...(profile.revoke?.kind === 'rfc7009' ? { revocation_endpoint: urls.revoke } : {}),
  };
  // Credentials are placed by the dialect fetch, request by request; openid-client sends none itself.
  const config = new client.Configuration(metadata, options.clientId, undefined, client.None());
  const wire: WireSettings = {
    profile,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    urls,
    headers: options.headers,
  };
  const dialect = dialectFetch(wire);
  config[client.customFetch] = transport ? transport(dialect) : dialect;
  // Stryker disable next-line ConditionalExpression: start-up refuses http: anywhere but loopback; https: needs no allowance.
  if (Object.values(urls).some((u) => u !== undefined && new URL(u).protocol === 'http:' && isLoopback(new URL(u)))) {
    client.allowInsecureRequests(config);
  }
  const timeoutSeconds = options.timeoutSeconds ?? 10;
  const learn =
    profile.tokenInfo && tokenInfoUrl !== undefined
      ? tokenInfo(profile.tokenInfo, tokenInfoUrl, options, timeoutSeconds)
      : undefined;
  const base = openIdClient(config, {
    scopes,
    authorizationParams: options.authorizationParams ?? {},
    timeoutSeconds,
    omit: profile.authorization.omit,
    scopeParam: profile.authorization.scopeParam,
    scopeSeparator: profile.authorization.scopeSeparator,
    sendState: profile.token.sendState,
    noRefresh: profile.refresh === false,
    secrets: [options.clientSecret],
    standardAnswer: (answer) => standardAnswer(profile, answer),
    recover: profile.recover
      ? recovery(options.endpoints?.recover ?? profile.recover.url, wire, fill, timeoutSeconds)
      : undefined,
    revoke:
      profile.revoke?.kind === 'request'
        ? requestRevoke(profile.revoke, urls.revoke as string, options, timeoutSeconds, learn)
        : undefined,
  });
  return learn ? withTokenInfo(base, learn) : base;
}

/**
 * A partial `endpoints` override that would send credentials to the provider's production host:
 * `token` (or `authorization`) moved to another origin while the preset's own `refresh` or `revoke`
 * URL was left as it is. Refused rather than guessed: deriving Dropbox Sign's `?refresh` or a revoke
 * path from the new token URL would be a guess about someone else's server, and a wrong guess sends
 * the client secret or a token to the wrong place.
 */
function strandedEndpoints(
  profile: ProviderProfile,
  endpoints: PresetOptions['endpoints'],
  fill: (url: string | undefined) => string | undefined,
): Array<[string, string]> {
  const origin = (url: string | undefined) => (url === undefined ? undefined : URL.parse(url)?.origin);
  const defaults = { authorization: profile.authorization.url, token: profile.token.url };
  const moved = (['token', 'authorization'] as const).find((name) => {
    const override = origin(fill(endpoints?.[name]));
    return override !== undefined && override !== origin(fill(defaults[name]));
  });
  if (moved === undefined) return [];
  const own = {
    refresh: profile.refresh ? profile.refresh.url : undefined,
    revoke: profile.revoke?.url,
    recover: profile.recover?.url,
    tokenInfo: profile.tokenInfo?.url,
  };
  return (['refresh', 'revoke', 'recover', 'tokenInfo'] as const)
    .filter((name) => own[name] !== undefined && endpoints?.[name] === undefined)
    .map((name) => [
      `endpoints.${name}`,
      `must be set too: endpoints.${moved} points elsewhere, but ${name} would still go to ${origin(fill(own[name]))}`,
    ]);
}

/**
 * The profile's `recover` request for one grant: its URL's `{name}` placeholders filled from the
 * grant's extras. Without them there is nothing to recover: the refusal stands.
 */
function recovery(
  template: string,
  wire: WireSettings,
  fill: (url: string | undefined) => string | undefined,
  timeoutSeconds: number,
): (extras: Readonly<Record<string, unknown>>) => Promise<unknown> {
  return async (extras) => {
    let missing = false;
    const url = (fill(template) as string).replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = extras[name];
      if (typeof value === 'string' || typeof value === 'number') return encodeURIComponent(String(value));
      missing = true;
      // Stryker disable next-line StringLiteral: a URL with a missing part is never requested.
      return '';
    });
    if (missing) {
      throw new OAuthError('provider_error', 'This login cannot be recovered: it was not imported with what recovery needs.', {
        error: 'invalid_grant',
      });
    }
    return call(() => recoverTokens(wire, url, timeoutSeconds));
  };
}

/**
 * A revocation that is not RFC 7009: Sunshine's `DELETE` with the bearer token, GitHub's grant
 * deletion. Placeholders left in its URL are filled from the login's extras; a login without them
 * (its token-info request failed) asks the token-info endpoint again, and is not revoked when that
 * does not tell either: the error reaches `onError`, the app's tokens are deleted all the same.
 */
function requestRevoke(
  revoke: Extract<RevokeProfile, { kind: 'request' }>,
  template: string,
  options: PresetOptions,
  timeoutSeconds: number,
  learn?: (accessToken: string) => Promise<Record<string, unknown>>,
) {
  return async ({
    accessToken,
    extras = {},
  }: {
    accessToken: string;
    extras?: Readonly<Record<string, unknown>> | undefined;
  }) => {
    let url = fillFromExtras(template, extras);
    if (typeof url !== 'string' && learn) url = fillFromExtras(template, { ...extras, ...(await learn(accessToken)) });
    if (typeof url !== 'string') {
      throw new OAuthError(
        'invalid_response',
        `Not revoked: the revocation URL needs {${url.missing}}, which the provider did not tell as a DNS label for this login.`,
      );
    }
    const headers = new Headers(options.headers);
    headers.set('accept', 'application/json');
    if (revoke.auth === 'bearer') headers.set('authorization', `Bearer ${accessToken}`);
    else headers.set('authorization', basicCredentials(options.clientId, options.clientSecret ?? ''));
    let body: string | undefined;
    if (revoke.tokenInBody) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify({ access_token: accessToken });
    }
    const response = await call(() =>
      fetch(url, { method: revoke.method, headers, body, signal: AbortSignal.timeout(timeoutSeconds * 1000) }),
    );
    await response.body?.cancel();
    if (!response.ok) {
      const code = response.status >= 500 ? 'provider_unavailable' : 'provider_error';
      throw new OAuthError(code, `The provider refused the revocation (${response.status}).`);
    }
  };
}

/** `template` with each `{name}` filled from `extras`, which must hold a DNS label there; else the first name missing. */
function fillFromExtras(template: string, extras: Readonly<Record<string, unknown>>): string | { missing: string } {
  let missing: string | undefined;
  const url = template.replace(/\{(\w+)\}/g, (placeholder, name: string) => {
    const value = extras[name];
    if (isDnsLabel(value)) return value;
    missing ??= name;
    return placeholder;
  });
  return missing === undefined ? url : { missing };
}

/** The profile's token-info request, with the app's headers, its network failures translated. */
function tokenInfo(spec: TokenInfoProfile, url: string, options: PresetOptions, timeoutSeconds: number) {
  return (accessToken: string) => call(() => readTokenInfo(spec, { url, accessToken, headers: options.headers, timeoutSeconds }));
}

/**
 * Adds the token-info extras to each code exchange's tokens. Its failure keeps the login, without
 * those extras: a revocation that needs them asks again (see `requestRevoke`).
 */
function withTokenInfo(base: ProviderClient, learn: (accessToken: string) => Promise<Record<string, unknown>>): ProviderClient {
  return {
    ...base,
    async exchangeCode(callbackUrl, redirectUri, checks) {
      const tokens = await base.exchangeCode(callbackUrl, redirectUri, checks);
      // Stryker disable next-line ArrowFunction: spreading nothing adds nothing, as spreading {} does.
      const learnt = await learn(tokens.accessToken).catch(() => ({}));
      return { ...tokens, extras: { ...tokens.extras, ...learnt } };
    },
  };
}

/** URLs still holding a `{name}` placeholder that nothing will fill. */
function unfilledPlaceholders(urls: Record<string, string | undefined>): Array<[string, string]> {
  return Object.entries(urls).flatMap(([field, url]): Array<[string, string]> => {
    const placeholder = url === undefined ? undefined : /\{\w+\}/.exec(url)?.[0];
    return placeholder === undefined ? [] : [[field, `holds ${placeholder}, which nothing fills in`]];
  });
}

/** Headers the library sets on provider requests: `PresetOptions.headers` may not replace them. */
const LIBRARY_HEADERS = [
  'accept',
  'authorization',
  'connection',
  'content-length',
  'content-type',
  'cookie',
  'dpop',
  'host',
  'proxy-authorization',
  'transfer-encoding',
];

function headerProblems(profile: ProviderProfile, headers: PresetOptions['headers']): Array<[string, string]> {
  if (headers === undefined) return [];
  if (typeof headers !== 'object' || headers === null) return [['headers', 'must be an object of header names and values']];
  const own = new Set(LIBRARY_HEADERS);
  const revokeAuth = profile.revoke?.kind === 'rfc7009' ? profile.revoke.clientAuth : undefined;
  for (const spec of [profile.token, profile.refresh || {}]) {
    for (const name of Object.keys(spec.headers ?? {})) own.add(name.toLowerCase());
  }
  for (const auth of [profile.token.clientAuth, profile.refresh ? profile.refresh.clientAuth : undefined, revokeAuth]) {
    if (auth?.in === 'header') own.add(auth.name.toLowerCase());
  }
  return Object.entries(headers).flatMap(([name, value]): Array<[string, string]> => {
    const field = `headers.${name}`;
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(name)) return [[field, 'is not a valid header name']];
    if (own.has(name.toLowerCase())) return [[field, 'is set by the library and cannot be overridden']];
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) return [[field, 'must be a string without line breaks']];
    return [];
  });
}
