import * as client from 'openid-client';
import { commonProblems, urlProblems } from './oidc.js';
import { clientAuthentication, openIdClient } from './openid.js';
import type { ProviderClient, ProviderDefinition, ProviderOptions } from './types.js';

export interface OAuth2Options extends ProviderOptions {
  /** Authorization endpoint URL. */
  authorization: string;
  /** Token endpoint URL. */
  token: string;
  /** RFC 7009 revocation endpoint URL, when the provider has one. */
  revoke?: string | undefined;
  /**
   * Issuer identifier, when the provider has one: the callback's `iss` (RFC 9207) must then equal it.
   * Defaults to the authorization endpoint's origin.
   */
  issuer?: string | undefined;
  /** Set when the provider always sends `iss` in callbacks (RFC 9207). */
  issParameterSupported?: boolean | undefined;
  /** Send PKCE S256. Default true. */
  pkce?: boolean | undefined;
}

/**
 * A plain OAuth 2.0 provider without discovery: the endpoints are given.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749
 * @example
 * ```ts
 * oauth2({ authorization: 'https://example.com/oauth/authorize', token: 'https://example.com/oauth/token', clientId, clientSecret })
 * ```
 */
export function oauth2(options: OAuth2Options): ProviderDefinition {
  const scopes = options.scopes ?? [];
  const pkce = options.pkce ?? true;
  let ready: ProviderClient | undefined;

  return {
    kind: 'oauth2',
    clientId: options.clientId,
    scopes,
    pkce,
    nonce: false,
    deniedErrors: ['access_denied'],
    problems: () => [
      ...urlProblems('authorization', options.authorization),
      ...urlProblems('token', options.token),
      ...(options.revoke === undefined ? [] : urlProblems('revoke', options.revoke)),
      ...(options.issuer === undefined ? [] : urlProblems('issuer', options.issuer)),
      ...commonProblems(options),
    ],
    async connect() {
      if (ready) return ready;
      const metadata: client.ServerMetadata = {
        issuer: options.issuer ?? new URL(options.authorization).origin,
        authorization_endpoint: options.authorization,
        token_endpoint: options.token,
        ...(options.revoke ? { revocation_endpoint: options.revoke } : {}),
        ...(options.issParameterSupported ? { authorization_response_iss_parameter_supported: true } : {}),
      };
      const urls = [options.authorization, options.token, options.revoke].filter((u) => u !== undefined);
      const insecure = urls.some((u) => new URL(u).protocol === 'http:');
      const config = new client.Configuration(metadata, options.clientId, options.clientSecret, clientAuthentication(options));
      if (insecure) client.allowInsecureRequests(config);
      ready = openIdClient(config, {
        scopes,
        authorizationParams: options.authorizationParams ?? {},
        pkce,
        nonce: false,
        timeoutSeconds: options.timeoutSeconds ?? 10,
      });
      return ready;
    },
  };
}
