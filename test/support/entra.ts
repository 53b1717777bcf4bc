/**
 * A local stand-in for Microsoft Entra ID (the identity platform's v2.0 endpoints), issuing tokens
 * the way the real one does, for the `microsoft()` preset's tests:
 *
 * - every tenant has a GUID; its discovery document, asked for by GUID or by any of its domains,
 *   names the issuer `{origin}/{tenant GUID}/v2.0`, and so does every ID token it signs
 *   (docs, "ID token claims reference": `iss`, `tid`);
 * - the aliases `organizations` (work accounts) and `common` (work and personal accounts) serve a
 *   tenant-independent document whose issuer is the template `{origin}/{tenantid}/v2.0`; their ID
 *   tokens carry the issuer and `tid` of the user's own tenant; `consumers` is the personal-account
 *   tenant `9188040d-6c67-4c5b-b112-36a304b66dad` (docs, "Access tokens": validate the issuer);
 * - an unknown tenant is a 400 with `AADSTS90002`; a wrong secret a 401 `invalid_client`;
 * - PKCE S256, single-use codes, rotating refresh tokens, RS256 ID tokens with a published key.
 *
 * The sign-in page is skipped: `signIn` plays the user who picks an account.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EntraTenant {
  id: string;
  domain: string;
}

export const CONTOSO: EntraTenant = { id: 'aaaabbbb-0000-cccc-1111-dddd2222eeee', domain: 'contoso.onmicrosoft.com' };
export const FABRIKAM: EntraTenant = { id: 'bbbbcccc-1111-dddd-2222-eeee3333ffff', domain: 'fabrikam.onmicrosoft.com' };
/** The tenant of personal Microsoft accounts (docs, "ID token claims reference": `tid`). */
export const CONSUMERS: EntraTenant = { id: '9188040d-6c67-4c5b-b112-36a304b66dad', domain: 'live.com' };

export interface EntraUser {
  upn: string;
  name: string;
  tenant: EntraTenant;
  oid: string;
}

export const USERS = {
  alice: { upn: 'alice@contoso.onmicrosoft.com', name: 'Alice', tenant: CONTOSO, oid: '00000000-0000-0000-0000-00000000a11c' },
  bob: { upn: 'bob@fabrikam.onmicrosoft.com', name: 'Bob', tenant: FABRIKAM, oid: '00000000-0000-0000-0000-000000000b0b' },
  carol: { upn: 'carol@outlook.com', name: 'Carol', tenant: CONSUMERS, oid: '00000000-0000-0000-0000-0000000ca201' },
} satisfies Record<string, EntraUser>;

export const ENTRA_CLIENT_ID = '11112222-3333-4444-5555-666677778888';
export const ENTRA_CLIENT_SECRET = 'entra~secret~0123456789abcdefghij';

const TENANTS = [CONTOSO, FABRIKAM, CONSUMERS];
const TEMPLATE = '{tenantid}';

/** How a path's first segment selects tenants: one tenant, or an alias admitting several. */
type Authority = { kind: 'tenant'; tenant: EntraTenant } | { kind: 'alias'; name: 'common' | 'organizations' };

export interface EntraServer {
  /** The authority host to give the preset (`authorityHost`). */
  origin: string;
  issuerOf(tenant: EntraTenant): string;
  /** Plays the user picking `user` on the sign-in page of this authorization URL; returns the redirect to the app. */
  signIn(authorizationUrl: string, user: EntraUser): Promise<URL>;
  /** Applied to the claims of every ID token issued until the next reset (a forged or mistaken token). */
  tamper: ((claims: Record<string, unknown>) => Record<string, unknown>) | undefined;
  /** Applied to every discovery document served until the next reset (a broken or foreign document). */
  tamperDiscovery: ((document: Record<string, unknown>) => Record<string, unknown>) | undefined;
  /**
   * Replaces every ID token issued until the next reset: given the header the server uses (RS256,
   * its `kid`), the claims and the genuine token it signed, returns the compact JWS to hand out.
   */
  forge: ((header: Record<string, unknown>, claims: Record<string, unknown>, genuine: string) => string) | undefined;
  /** Access token lifetime for the next issued tokens, in seconds. */
  accessTokenTtl: number;
  /** Requests served (or refused), by kind. */
  counts: { discovery: number; jwks: number; authorizationCode: number; refresh: number };
  reset(): void;
  close(): Promise<void>;
}

interface Pending {
  authority: string;
  redirectUri: string;
  state: string | undefined;
  nonce: string | undefined;
  scope: string;
  codeChallenge: string | undefined;
}

interface Grant {
  authority: string;
  user: EntraUser;
  scope: string;
  nonce?: string | undefined;
  redirectUri?: string;
  codeChallenge?: string | undefined;
}

export async function startEntra(options: { redirectUris: string[] }): Promise<EntraServer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  const pending = new Map<string, Pending>();
  const codes = new Map<string, Grant>();
  const refreshTokens = new Map<string, Grant>();

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, { error: 'server_error' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuerOf = (tenant: EntraTenant) => `${origin}/${tenant.id}/v2.0`;

  const state: EntraServer = {
    origin,
    issuerOf,
    signIn,
    tamper: undefined,
    tamperDiscovery: undefined,
    forge: undefined,
    accessTokenTtl: 3600,
    counts: { discovery: 0, jwks: 0, authorizationCode: 0, refresh: 0 },
    reset() {
      state.tamper = undefined;
      state.tamperDiscovery = undefined;
      state.forge = undefined;
      state.accessTokenTtl = 3600;
      state.counts = { discovery: 0, jwks: 0, authorizationCode: 0, refresh: 0 };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };

  function authorityOf(segment: string): Authority | undefined {
    if (segment === 'common' || segment === 'organizations') return { kind: 'alias', name: segment };
    if (segment === 'consumers') return { kind: 'tenant', tenant: CONSUMERS };
    const tenant = TENANTS.find((t) => t.id === segment.toLowerCase() || t.domain === segment.toLowerCase());
    return tenant && { kind: 'tenant', tenant };
  }

  function admits(authority: Authority, user: EntraUser): boolean {
    if (authority.kind === 'tenant') return authority.tenant === user.tenant;
    return authority.name === 'common' || user.tenant !== CONSUMERS;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const [, segment = '', ...rest] = url.pathname.split('/');
    const path = rest.join('/');
    const discovery = req.method === 'GET' && path === 'v2.0/.well-known/openid-configuration';
    if (discovery) state.counts.discovery++;
    const authority = authorityOf(decodeURIComponent(segment));
    if (!authority) {
      const text = `AADSTS90002: Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`;
      return send(res, 400, { error: 'invalid_tenant', error_description: text, error_codes: [90002] });
    }
    // Endpoints of a tenant's document name it by GUID; an alias's keep the alias.
    const base = `${origin}/${authority.kind === 'tenant' ? authority.tenant.id : authority.name}`;
    if (discovery) {
      const tamper = state.tamperDiscovery ?? ((document) => document);
      return send(
        res,
        200,
        tamper({
          token_endpoint: `${base}/oauth2/v2.0/token`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          jwks_uri: `${base}/discovery/v2.0/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          issuer: authority.kind === 'tenant' ? issuerOf(authority.tenant) : `${origin}/${TEMPLATE}/v2.0`,
          request_uri_parameter_supported: false,
          userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'email', 'name', 'oid', 'tid'],
          tenant_region_scope: null,
          cloud_instance_name: 'microsoftonline.com',
          msgraph_host: 'graph.microsoft.com',
        }),
      );
    }
    if (req.method === 'GET' && path === 'discovery/v2.0/keys') {
      state.counts.jwks++;
      return send(res, 200, { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] });
    }
    if (req.method === 'GET' && path === 'oauth2/v2.0/authorize') return authorize(res, segment, url.searchParams);
    if (req.method === 'POST' && path === 'login') return login(res, authority, new URLSearchParams(await body(req)));
    if (req.method === 'POST' && path === 'oauth2/v2.0/token')
      return token(req, res, segment, new URLSearchParams(await body(req)));
    send(res, 404, { error: 'not_found' });
  }

  function authorize(res: ServerResponse, segment: string, params: URLSearchParams): void {
    const redirectUri = params.get('redirect_uri') ?? '';
    const problem =
      params.get('client_id') !== ENTRA_CLIENT_ID
        ? 'AADSTS700016: Application not found in the directory.'
        : !options.redirectUris.includes(redirectUri)
          ? 'AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.'
          : params.get('response_type') !== 'code'
            ? 'AADSTS900144: The request body must contain the following parameter: response_type.'
            : params.has('code_challenge') && params.get('code_challenge_method') !== 'S256'
              ? 'AADSTS501491: Invalid size of Code_Challenge parameter.'
              : undefined;
    if (problem) return page(res, 400, problem);
    const id = randomUUID();
    pending.set(id, {
      authority: segment,
      redirectUri,
      state: params.get('state') ?? undefined,
      nonce: params.get('nonce') ?? undefined,
      scope: params.get('scope') ?? '',
      codeChallenge: params.get('code_challenge') ?? undefined,
    });
    page(res, 200, `<form method="post" action="/${segment}/login"><input type="hidden" name="request" value="${id}"></form>`);
  }

  function login(res: ServerResponse, authority: Authority, form: URLSearchParams): void {
    const request = pending.get(form.get('request') ?? '');
    const user = Object.values(USERS).find((u) => u.upn === form.get('user'));
    if (!request || !user) return page(res, 400, 'AADSTS90014: The request is incomplete.');
    pending.delete(form.get('request') ?? '');
    const back = new URL(request.redirectUri);
    if (!admits(authority, user)) {
      // As Entra ID does for an account its tenant does not know (AADSTS50020): an error, no code.
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'AADSTS50020: User account does not exist in tenant.');
    } else {
      const code = `1.${randomBytes(24).toString('base64url')}`;
      codes.set(code, { ...request, user });
      back.searchParams.set('code', code);
    }
    if (request.state !== undefined) back.searchParams.set('state', request.state);
    back.searchParams.set('session_state', randomUUID());
    res.writeHead(302, { location: back.href }).end();
  }

  async function token(req: IncomingMessage, res: ServerResponse, segment: string, form: URLSearchParams): Promise<void> {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = basic
      ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent)
      : [form.get('client_id'), form.get('client_secret')];
    if (id !== ENTRA_CLIENT_ID || secret !== ENTRA_CLIENT_SECRET) {
      return aadError(res, 401, 'invalid_client', 7000215, 'Invalid client secret provided.');
    }
    let grant: Grant | undefined;
    if (form.get('grant_type') === 'authorization_code') {
      state.counts.authorizationCode++;
      grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier');
      if (!grant || grant.authority !== segment || grant.redirectUri !== form.get('redirect_uri')) {
        return aadError(res, 400, 'invalid_grant', 70000, 'Provided grant is invalid or malformed.');
      }
      if (
        grant.codeChallenge !== undefined &&
        createHash('sha256')
          .update(verifier ?? '')
          .digest('base64url') !== grant.codeChallenge
      ) {
        return aadError(
          res,
          400,
          'invalid_grant',
          501481,
          'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
        );
      }
    } else if (form.get('grant_type') === 'refresh_token') {
      state.counts.refresh++;
      grant = refreshTokens.get(form.get('refresh_token') ?? '');
      refreshTokens.delete(form.get('refresh_token') ?? '');
      if (!grant) return aadError(res, 400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
      grant = { ...grant, nonce: undefined }; // a refreshed ID token carries no nonce
    } else {
      return aadError(res, 400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    }
    const scopes = grant.scope.split(' ');
    const refreshToken = scopes.includes('offline_access') ? `0.${randomBytes(32).toString('base64url')}` : undefined;
    if (refreshToken) refreshTokens.set(refreshToken, grant);
    send(res, 200, {
      token_type: 'Bearer',
      scope: scopes.filter((s) => s !== 'offline_access').join(' '),
      expires_in: state.accessTokenTtl,
      ext_expires_in: state.accessTokenTtl,
      access_token: `eyJ0.${randomBytes(24).toString('base64url')}`,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
      ...(scopes.includes('openid') ? { id_token: idToken(grant) } : {}),
    });
  }

  function idToken(grant: Grant): string {
    const now = Math.floor(Date.now() / 1000);
    const { user } = grant;
    const claims: Record<string, unknown> = {
      aud: ENTRA_CLIENT_ID,
      iss: issuerOf(user.tenant),
      iat: now,
      nbf: now,
      exp: now + 3600,
      aio: randomBytes(12).toString('base64url'),
      name: user.name,
      ...(grant.nonce === undefined ? {} : { nonce: grant.nonce }),
      oid: user.oid,
      preferred_username: user.upn,
      email: user.upn,
      rh: '0.AAAA',
      // Pairwise: per user, tenant and app.
      sub: createHash('sha256').update(`${user.oid}:${user.tenant.id}:${ENTRA_CLIENT_ID}`).digest('base64url').slice(0, 43),
      tid: user.tenant.id,
      uti: randomBytes(16).toString('base64url'),
      ver: '2.0',
    };
    const payload = state.tamper ? state.tamper(claims) : claims;
    const header = { typ: 'JWT', alg: 'RS256', kid };
    const signingInput = [header, payload].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.');
    const genuine = `${signingInput}.${sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url')}`;
    return state.forge ? state.forge(header, payload, genuine) : genuine;
  }

  async function signIn(authorizationUrl: string, user: EntraUser): Promise<URL> {
    const pageResponse = await fetch(authorizationUrl, { signal: AbortSignal.timeout(5000) });
    const html = await pageResponse.text();
    const action = /action="([^"]+)"/.exec(html)?.[1];
    const request = /name="request" value="([^"]+)"/.exec(html)?.[1];
    if (!pageResponse.ok || !action || !request) throw new Error(`no sign-in page at ${authorizationUrl}: ${html}`);
    const answer = await fetch(new URL(action, origin), {
      method: 'POST',
      body: new URLSearchParams({ request, user: user.upn }),
      redirect: 'manual',
      signal: AbortSignal.timeout(5000),
    });
    const location = answer.headers.get('location');
    if (answer.status !== 302 || !location) throw new Error(`sign-in did not redirect (${answer.status})`);
    return new URL(location);
  }

  return state;
}

function aadError(res: ServerResponse, status: number, error: string, code: number, description: string): void {
  send(res, status, {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date().toISOString(),
    trace_id: randomUUID(),
    correlation_id: randomUUID(),
  });
}

function send(res: ServerResponse, status: number, json: unknown): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(json));
}

function page(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><body>${html}</body>`);
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
