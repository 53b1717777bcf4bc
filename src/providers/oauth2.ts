import { fromProfile } from './from-profile.js';
import type { ProviderDefinition, ProviderOptions } from './types.js';

export interface OAuth2Options extends ProviderOptions {
  /** Authorization endpoint URL. */
  authorization: string;
  /** Token endpoint URL. */
  token: string;
  /** RFC 7009 revocation endpoint URL, when the provider has one. */
  revoke?: string | undefined;
  /** Send PKCE S256. Default true. */
  pkce?: boolean | undefined;
}

/**
 * A standard OAuth 2.0 provider without discovery: the endpoints are given. For a provider that
 * bends the standard, describe it with `fromProfile` instead.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749
 * @example
 * ```ts
 * oauth2({ authorization: 'https://example.com/oauth/authorize', token: 'https://example.com/oauth/token', clientId, clientSecret })
 * ```
 */
export function oauth2(options: OAuth2Options): ProviderDefinition {
  const clientAuth =
    options.tokenEndpointAuthMethod === 'client_secret_post'
      ? ({ in: 'body', secret: 'client_secret' } as const)
      : options.tokenEndpointAuthMethod === 'none'
        ? ({ in: 'none' } as const)
        : ({ in: 'basic' } as const);
  const definition = fromProfile(
    {
      name: 'oauth2',
      // Stryker disable next-line LogicalOperator: fromProfile takes an unset pkce as true as well.
      authorization: { url: options.authorization, pkce: options.pkce ?? true },
      token: { url: options.token, clientAuth },
      ...(options.revoke ? { revoke: { kind: 'rfc7009' as const, url: options.revoke, clientAuth } } : {}),
    },
    options,
  );
  const problems = definition.problems;
  // Name the fields as this factory's options call them.
  // Stryker disable next-line Regex: no field names `endpoints.` but at its start
  return { ...definition, problems: () => problems().map(([field, why]) => [field.replace(/^endpoints\./, ''), why]) };
}
