import * as client from 'openid-client';
import { OAuthError } from '../errors.js';
import { commonProblems, urlProblems } from './oidc.js';
import { call, isLoopback, openIdClient } from './openid.js';
import type { PresetOptions, ProviderProfile, RevokeProfile } from './profile.js';
import type { ProviderClient, ProviderDefinition } from './types.js';
import { basicCredentials, dialectFetch } from './wire.js';

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
  profile: ProviderProfile,
  options: PresetOptions,
  defaults: { scopes?: readonly string[] } = {},
): ProviderDefinition {
  const fill = (url: string | undefined) => url?.replaceAll('{clientId}', encodeURIComponent(options.clientId ?? ''));
  const revokeUrl = fill(options.endpoints?.revoke ?? profile.revoke?.url);
  const urls = {
    authorization: fill(options.endpoints?.authorization ?? profile.authorization.url) as string,
    token: fill(options.endpoints?.token ?? profile.token.url) as string,
    refresh: fill(
      options.endpoints?.refresh ??
        (profile.refresh ? profile.refresh.url : undefined) ??
        options.endpoints?.token ??
        profile.token.url,
    ) as string,
    revoke: revokeUrl,
  };
  const scopes = options.scopes ?? defaults.scopes ?? [];
  const pkce = profile.authorization.pkce ?? true;
  const needsSecret = [profile.token.clientAuth, profile.refresh ? profile.refresh.clientAuth : undefined].some(
    (a) => a?.in !== 'none',
  );
  let ready: ProviderClient | undefined;

  return {
    kind: profile.name,
    clientId: options.clientId,
    scopes,
    pkce,
    nonce: profile.oidc !== undefined && scopes.includes('openid'),
    timeoutSeconds: options.timeoutSeconds ?? 10,
    deniedErrors: ['access_denied', ...(profile.authorization.deniedErrors ?? [])],
    withoutState: WITHOUT_STATE[profile.authorization.state ?? 'always'],
    expiredStatuses: profile.expiredStatuses ?? [401],
    problems: () => [
      ...urlProblems('endpoints.authorization', urls.authorization),
      ...urlProblems('endpoints.token', urls.token),
      ...urlProblems('endpoints.refresh', urls.refresh),
      ...(urls.revoke === undefined ? [] : urlProblems('endpoints.revoke', urls.revoke)),
      ...strandedEndpoints(profile, options.endpoints, fill),
      ...commonProblems({ ...options, tokenEndpointAuthMethod: needsSecret ? 'client_secret_basic' : 'none' }),
      ...(profile.authorization.omit?.includes('scope') && scopes.length > 0
        ? [['scopes', "are chosen in the provider's app settings: it refuses a scope parameter"] as [string, string]]
        : []),
    ],
    async connect() {
      if (ready) return ready;
      const metadata: client.ServerMetadata = {
        issuer: profile.oidc?.issuer ?? new URL(urls.authorization).origin,
        authorization_endpoint: urls.authorization,
        token_endpoint: urls.token,
        ...(profile.revoke?.kind === 'rfc7009' ? { revocation_endpoint: urls.revoke } : {}),
      };
      // Credentials are placed by the dialect fetch, request by request; openid-client sends none itself.
      const config = new client.Configuration(metadata, options.clientId, undefined, client.None());
      config[client.customFetch] = dialectFetch({
        profile,
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        urls,
      });
      if (Object.values(urls).some((u) => u !== undefined && new URL(u).protocol === 'http:' && isLoopback(new URL(u)))) {
        client.allowInsecureRequests(config);
      }
      const timeoutSeconds = options.timeoutSeconds ?? 10;
      ready = openIdClient(config, {
        scopes,
        authorizationParams: options.authorizationParams ?? {},
        timeoutSeconds,
        omit: profile.authorization.omit,
        scopeParam: profile.authorization.scopeParam,
        scopeSeparator: profile.authorization.scopeSeparator,
        sendState: profile.token.sendState,
        noRefresh: profile.refresh === false,
        secrets: [options.clientSecret],
        revoke:
          profile.revoke?.kind === 'request'
            ? requestRevoke(profile.revoke, urls.revoke as string, options, timeoutSeconds)
            : undefined,
      });
      return ready;
    },
  };
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
  const own = { refresh: profile.refresh ? profile.refresh.url : undefined, revoke: profile.revoke?.url };
  return (['refresh', 'revoke'] as const)
    .filter((name) => own[name] !== undefined && endpoints?.[name] === undefined)
    .map((name) => [
      `endpoints.${name}`,
      `must be set too: endpoints.${moved} points elsewhere, but ${name} would still go to ${origin(fill(own[name]))}`,
    ]);
}

/** A revocation that is not RFC 7009: Sunshine's `DELETE` with the bearer token, GitHub's grant deletion. */
function requestRevoke(
  revoke: Extract<RevokeProfile, { kind: 'request' }>,
  url: string,
  options: PresetOptions,
  timeoutSeconds: number,
) {
  return async ({ accessToken }: { accessToken: string }) => {
    const headers = new Headers({ accept: 'application/json' });
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
