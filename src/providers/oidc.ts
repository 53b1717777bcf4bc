import * as client from 'openid-client';
import { clientAuthentication, isLoopback, openIdClient, RESERVED_AUTHORIZATION_PARAMS, translateClientError } from './openid.js';
import type { ProviderClient, ProviderDefinition, ProviderOptions } from './types.js';

export interface OidcOptions extends ProviderOptions {
  /** The issuer identifier, exactly as the provider's discovery document spells it. */
  issuer: string;
}

/**
 * A standard OpenID Connect provider, configured by discovery.
 * PKCE (S256), `state` and `nonce` are always sent; the ID token is validated by openid-client.
 *
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html
 * @example
 * ```ts
 * oidc({ issuer: 'https://accounts.google.com', clientId, clientSecret, scopes: ['openid', 'email'] })
 * ```
 */
export function oidc(options: OidcOptions): ProviderDefinition {
  const scopes = options.scopes ?? ['openid', 'profile', 'email'];
  let connecting: Promise<ProviderClient> | undefined;

  async function discover(): Promise<ProviderClient> {
    const issuer = new URL(options.issuer);
    const config = await client.discovery(issuer, options.clientId, undefined, clientAuthentication(options), {
      execute: issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [],
      timeout: options.timeoutSeconds ?? 10,
    });
    return openIdClient(config, {
      scopes,
      authorizationParams: options.authorizationParams ?? {},
      timeoutSeconds: options.timeoutSeconds ?? 10,
      secrets: [options.clientSecret],
    });
  }

  return {
    kind: 'oidc',
    clientId: options.clientId,
    scopes,
    pkce: true,
    browserLogin: true,
    // An ID token (and so a nonce) only when `openid` is asked for: without it there is none.
    nonce: scopes.includes('openid'),
    timeoutSeconds: options.timeoutSeconds ?? 10,
    deniedErrors: ['access_denied'],
    withoutState: 'refuse',
    expiredStatuses: [401],
    problems: () => [...urlProblems('issuer', options.issuer), ...commonProblems(options)],
    connect() {
      // Discovery runs once; a failed attempt is forgotten so the next request tries again.
      connecting ??= discover().catch((err: unknown) => {
        connecting = undefined;
        throw translateClientError(err);
      });
      return connecting;
    },
  };
}

/** A URL option must be absolute https, or http on a loopback host. */
export function urlProblems(field: string, value: unknown): Array<[string, string]> {
  if (typeof value !== 'string' || value === '') return [[field, 'is required']];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [[field, 'is not an absolute URL']];
  }
  if (url.protocol === 'https:') return [];
  if (url.protocol === 'http:' && isLoopback(url)) return [];
  return [[field, 'must use https: (http: only for localhost, 127.0.0.1 or ::1)']];
}

export function commonProblems(options: ProviderOptions): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (typeof options.clientId !== 'string' || options.clientId === '') problems.push(['clientId', 'is required']);
  const method = options.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (method !== 'none' && (typeof options.clientSecret !== 'string' || options.clientSecret === '')) {
    problems.push(['clientSecret', `is required for ${method}`]);
  }
  for (const key of Object.keys(options.authorizationParams ?? {})) {
    if (RESERVED_AUTHORIZATION_PARAMS.has(key)) {
      problems.push([`authorizationParams.${key}`, 'is set by the library and cannot be overridden']);
    }
  }
  return problems;
}
