import * as client from 'openid-client';
import { OAuthError } from '../errors.js';
import { fromProfile } from './from-profile.js';
import { type IdTokenKeys, idTokenSignatures, urlProblems } from './oidc.js';
import { isLoopback } from '../loopback.js';
import { translateClientError } from './openid.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderClient, ProviderDefinition } from './types.js';
import type { StoredTokens } from '../token-shape.js';

/** Azure Identity's `AzureAuthorityHosts.AzurePublicCloud`. */
const PUBLIC_CLOUD = 'https://login.microsoftonline.com';
const DEFAULT_SCOPES = ['openid', 'profile', 'email', 'offline_access', 'User.Read'];
/** What the tenant-independent discovery documents (`common`, `organizations`) put in their issuer. */
const TENANT_PLACEHOLDER = '{tenantid}';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A tenant id (a GUID), a domain name, or `common` / `organizations` / `consumers`: DNS characters only.
const TENANT = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/i;

export interface MicrosoftOptions extends PresetOptions {
  /**
   * The tenant id (a GUID), one of its verified domains (`contoso.onmicrosoft.com`), or `common`
   * (any Microsoft account), `organizations` (work or school accounts) or `consumers` (personal
   * accounts). Default `common`.
   */
  tenant?: string | undefined;
  /**
   * The cloud instance's login host, an origin: `https://login.microsoftonline.us` (US Government),
   * `https://login.partner.microsoftonline.cn` (China, operated by 21Vianet), as Microsoft's
   * "National clouds" page lists them, or a local stand-in for tests. Default
   * `https://login.microsoftonline.com`. Named after Azure Identity's `authorityHost`.
   */
  authorityHost?: string | undefined;
}

/**
 * Microsoft identity platform (Entra ID) v2.0, with the ID token validated for every kind of
 * tenant. An ID token's `iss` is `https://login.microsoftonline.com/{tenant GUID}/v2.0` whatever
 * alias the login went through (a domain, `organizations`, `common`), and its `tid` names that
 * tenant (Microsoft identity platform docs, "ID token claims reference": `iss`, `tid`). So the
 * expected issuer is read, once, from the tenant's OpenID discovery document at
 * `{authorityHost}/{tenant}/v2.0/.well-known/openid-configuration`: for a GUID, a domain or
 * `consumers` it names the tenant's GUID; for `common` and `organizations` it is the template
 * `https://login.microsoftonline.com/{tenantid}/v2.0`, and each ID token's `iss` must equal it
 * with `{tenantid}` replaced by the token's own `tid`, which must be a GUID (docs, "Access tokens":
 * validate the issuer, tenant-independent metadata). Any other `iss` is refused: `invalid_response`.
 * The ID token's signature is verified too, with a key of the same document's `jwks_uri` (docs,
 * "ID tokens": validate the signature), at login and at refresh.
 * Endpoints are the documented `{authorityHost}/{tenant}/oauth2/v2.0/authorize` and `/token`;
 * `endpoints` still replaces them.
 *
 * With a multi-tenant login, the same `sub` or `oid` in two tenants are two users: key users by
 * `tid` and `oid` (docs, "ID token claims reference": use claims to reliably identify a user).
 *
 * @see https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
 * @see https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-issuer
 * @see https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
 * @example
 * ```ts
 * providers: {
 *   microsoft: microsoft({ clientId, clientSecret, tenant: 'contoso.onmicrosoft.com' }),
 *   anyone: microsoft({ clientId, clientSecret, tenant: 'common' }), // work, school and personal accounts
 *   gov: microsoft({ clientId, clientSecret, tenant: 'organizations', authorityHost: 'https://login.microsoftonline.us' }),
 * }
 * ```
 */
export function microsoft(options: MicrosoftOptions): ProviderDefinition {
  // An origin's one trailing slash, if given (anything more than an origin is refused by `problems`).
  const host = typeof options.authorityHost === 'string' ? options.authorityHost.replace(/\/$/, '') : PUBLIC_CLOUD;
  const tenant = options.tenant ?? 'common';
  const tenantUrl = `${host}/${encodeURIComponent(String(tenant))}`;
  const profile = (issuer: string): ProviderProfile => ({
    name: 'microsoft',
    oidc: { issuer },
    authorization: { url: `${tenantUrl}/oauth2/v2.0/authorize` },
    token: { url: `${tenantUrl}/oauth2/v2.0/token`, clientAuth: { in: 'body', secret: 'client_secret' } },
    // `ext_expires_in` (a lifetime for Microsoft's own outages) is no use to an app: no extras kept.
    // Stryker disable next-line ArrayDeclaration: no answer has a field named as the mutant's entry.
    response: { extras: [] },
  });
  // The login side knows no issuer yet (no discovery before the first callback): this one is a
  // placeholder, never compared with anything (see `connect` below).
  // Stryker disable next-line StringLiteral: the placeholder is never compared with anything.
  const definition = fromProfile(profile(`${tenantUrl}/v2.0`), options, { scopes: DEFAULT_SCOPES });
  const entra: EntraTenant = {
    tenant: String(tenant),
    discoveryUrl: `${tenantUrl}/v2.0/.well-known/openid-configuration`,
    clientId: options.clientId,
    timeoutSeconds: options.timeoutSeconds ?? 10,
    signatures: idTokenSignatures(options.clientId, options.timeoutSeconds ?? 10),
    tokenClient: (issuer, transport) => fromProfile(profile(issuer), options, { scopes: DEFAULT_SCOPES, transport }).connect(),
  };
  let ready: ProviderClient | undefined;

  return {
    ...definition,
    problems: () => [...entraProblems(options), ...definition.problems()],
    async connect() {
      if (ready) return ready;
      const login = await definition.connect();
      ready = {
        ...login,
        // Known per tenant only once a token names it. Entra ID sends no RFC 9207 `iss` in callbacks
        // (its discovery documents do not offer it); should one come, openid-client compares it
        // with the discovered issuer while redeeming the code.
        issuer: undefined,
        exchangeCode: (callbackUrl, redirectUri, checks) =>
          validatedForTenant(entra, (tokens) => tokens.exchangeCode(callbackUrl, redirectUri, checks)),
        refresh: (refreshToken) => validatedForTenant(entra, (tokens) => tokens.refresh(refreshToken)),
      };
      return ready;
    },
  };
}

/** What one `microsoft()` preset knows of its tenant, and how it makes token clients. */
interface EntraTenant {
  readonly tenant: string;
  readonly discoveryUrl: string;
  readonly clientId: string;
  readonly timeoutSeconds: number;
  /** A client whose ID tokens must come from `issuer`, its requests going through `transport`. */
  readonly tokenClient: (
    issuer: string,
    transport: (dialect: client.CustomFetch) => client.CustomFetch,
  ) => Promise<ProviderClient>;
  /** Verifies the signature of a validated answer's ID token (see `idTokenSignatures`). */
  readonly signatures: (tokens: StoredTokens, keys: IdTokenKeys) => Promise<StoredTokens>;
  /** The discovered issuer and keys (in flight or known); forgotten after a failure, so the next call tries again. */
  discovered?: Promise<IdTokenKeys> | undefined;
}

/** A token endpoint answer, read in full so that openid-client can be handed it a second time. */
interface Answer {
  status: number;
  statusText: string;
  headers: Headers;
  body: ArrayBuffer;
}

/**
 * Redeems a code or a refresh token, and has openid-client validate the answer as coming from the
 * tenant its ID token names. Which issuer to expect is known only once the answer is in, but an
 * openid-client Configuration fixes its issuer before the request: so the request goes out once,
 * through a first client that keeps the answer and stops there (it processes nothing); a second
 * client, whose issuer is the one expected for that answer, is then handed the kept answer instead
 * of the network and does all of openid-client's usual checks (`iss`, `aud`, `exp`, `nonce`, state,
 * errors). openid-client v6 has this rule built in (`_expectedIssuer` set by `handleEntraId` on
 * discovery), but only when discovery ran against the exact origin https://login.microsoftonline.com,
 * and it is not reachable through its public API (the marker is private, and Configuration drops
 * symbol-keyed metadata): so the rule is applied here, the same way for every authority host, the
 * public cloud, sovereign clouds and a local test server alike. Neither client knows the tenant's
 * keys (a profile's Configuration has no `jwks_uri`): the ID token's signature is verified last,
 * with a key of the discovered `jwks_uri` (`idTokenSignatures`), for the issuer just checked.
 */
async function validatedForTenant(
  entra: EntraTenant,
  redeem: (tokens: ProviderClient) => Promise<StoredTokens>,
): Promise<StoredTokens> {
  const discovered = await discoveredKeys(entra);
  const kept: { answer?: Answer } = {};
  try {
    await redeem(
      await entra.tokenClient(discovered.issuer, (dialect) => async (url, init) => {
        const response = await dialect(url, init);
        kept.answer = {
          status: response.status,
          statusText: response.statusText,
          headers: response.headers,
          body: await response.arrayBuffer(),
        };
        // Stryker disable next-line StringLiteral: the error is caught below, its message unread.
        throw new Error('answer kept'); // stops the first client: the answer is validated below
      }),
    );
  } catch (err) {
    if (kept.answer === undefined) throw err; // refused before any request, or the request failed
  }
  const { answer } = kept;
  // Unreachable: the first client's transport throws once it has kept an answer, and an error thrown
  // before any answer is rethrown above. Kept so that a change in openid-client fails loudly.
  // Stryker disable next-line all: unreachable, see above.
  if (answer === undefined) throw new OAuthError('invalid_response', 'The token request was not sent.');
  const { body, ...init } = answer;
  const replay = async () => new Response(body, init);
  const issuer = expectedIssuer(discovered.issuer, answer);
  return entra.signatures(await redeem(await entra.tokenClient(issuer, () => replay)), { ...discovered, issuer });
}

/**
 * The issuer an answer's ID token must have: the discovered one, with a tenant-independent
 * template's `{tenantid}` replaced by the token's `tid` (as openid-client's own Entra ID rule does).
 * An answer without an ID token (an error, a refresh without `openid`) has nothing to check.
 */
function expectedIssuer(discovered: string, answer: Answer): string {
  if (!discovered.includes(TENANT_PLACEHOLDER)) return discovered;
  const idToken = idTokenOf(answer.body);
  if (idToken === undefined) return discovered;
  const tid = tenantOf(idToken);
  if (typeof tid !== 'string' || !GUID.test(tid)) {
    throw new OAuthError('invalid_response', 'The ID token names no tenant (`tid`): its issuer cannot be checked.');
  }
  return discovered.replace(TENANT_PLACEHOLDER, tid);
}

function idTokenOf(body: ArrayBuffer): string | undefined {
  try {
    const json: unknown = JSON.parse(new TextDecoder().decode(body));
    const idToken = (json as { id_token?: unknown } | null)?.id_token;
    return typeof idToken === 'string' ? idToken : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The unverified `tid` claim, read only to choose the issuer to expect; openid-client then validates
 * the claims. A payload that is no JSON object has no `tid` (`?.` reads none from a primitive).
 */
function tenantOf(idToken: string): unknown {
  try {
    // Stryker disable next-line StringLiteral: a missing payload, or any other text in its place, is no JSON object.
    const claims = JSON.parse(Buffer.from(idToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { tid?: unknown } | null;
    return claims?.tid;
  } catch {
    return undefined;
  }
}

/** The tenant's issuer and keys, from its discovery document (fetched once; again after a failure). */
function discoveredKeys(entra: EntraTenant): Promise<IdTokenKeys> {
  entra.discovered ??= discover(entra).catch((err: unknown) => {
    entra.discovered = undefined;
    throw err;
  });
  return entra.discovered;
}

async function discover(entra: EntraTenant): Promise<IdTokenKeys> {
  const url = new URL(entra.discoveryUrl);
  let metadata: client.ServerMetadata;
  try {
    // A URL holding `/.well-known/` is fetched as it is: no issuer-equals-URL check, which a
    // domain or an alias would fail (their issuer names the tenant's GUID).
    const config = await client.discovery(url, entra.clientId, undefined, client.None(), {
      execute: url.protocol === 'http:' && isLoopback(url) ? [client.allowInsecureRequests] : [],
      timeout: entra.timeoutSeconds,
    });
    metadata = config.serverMetadata();
  } catch (err) {
    const translated = translateClientError(err);
    const why = translated.code === 'provider_unavailable' ? 'could not be fetched' : 'was refused (is the tenant right?)';
    throw new OAuthError(translated.code, `The discovery document of the Microsoft tenant ${entra.tenant} ${why}.`, {
      cause: translated.cause,
    });
  }
  const { issuer, jwks_uri: jwksUri, id_token_signing_alg_values_supported: algorithms } = metadata;
  for (const [field, value] of [
    ['issuer', issuer],
    ['jwks_uri', jwksUri],
  ] as const) {
    if (urlProblems(field, value).length > 0) {
      throw new OAuthError(
        'invalid_response',
        `The discovery document of the Microsoft tenant ${entra.tenant} names no usable ${field}.`,
      );
    }
  }
  return { issuer, jwksUri: jwksUri as string, algorithms };
}

function entraProblems(options: MicrosoftOptions): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  const { tenant, authorityHost } = options;
  if (tenant !== undefined && (typeof tenant !== 'string' || !TENANT.test(tenant))) {
    problems.push(['tenant', 'must be a tenant id (a GUID), a domain name, or common, organizations or consumers']);
  }
  if (authorityHost !== undefined) {
    const invalid = urlProblems('authorityHost', authorityHost);
    if (invalid.length > 0) problems.push(...invalid);
    else if (new URL(authorityHost).href !== `${new URL(authorityHost).origin}/`) {
      problems.push([
        'authorityHost',
        'must be an origin only, such as https://login.microsoftonline.us (the tenant is set apart)',
      ]);
    }
  }
  return problems;
}
