/**
 * A minimal, strict OpenID Connect issuer for the ID token tests: discovery, a JWK Set, an
 * authorization endpoint that signs the user in at once, and a token endpoint (client
 * authentication, single-use codes, PKCE S256, refresh tokens). Its ID tokens are RS256 JWS signed
 * with a published key, unless a test forges them: `forge` receives the claims the token should
 * have and a kit of keys and signers, and returns the compact JWS to hand out instead.
 *
 * Signing uses node:crypto (RSASSA-PKCS1-v1_5, ECDSA, HMAC), so that a test can build any token,
 * a broken one included; the library under test verifies them with openid-client.
 */
import {
  createHash,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  type KeyPairKeyObjectResult,
  randomBytes,
  sign,
} from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForgeKit {
  /** The issuer's current signing key and its `kid`. */
  key: KeyObject;
  kid: string;
  /** An RSA key that the issuer never published. */
  foreignKey: KeyObject;
  /** An EC P-256 key the issuer publishes (kid `kid-ec`) but does not sign ID tokens with. */
  ecKey: KeyObject;
  clientId: string;
  clientSecret: string;
  /**
   * A compact JWS of `header` and `payload`, signed with `key`: RSASSA-PKCS1-v1_5 SHA-256 for an RSA
   * key, ECDSA SHA-256 for an EC key, HMAC SHA-256 for a string, no signature for `null`. The
   * header's `alg` is written as given, whatever the key.
   */
  jws(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject | string | null): string;
}

export type Forge = (claims: Record<string, unknown>, kit: ForgeKit) => string;

export interface TestIssuer {
  /** The issuer identifier (`iss`), and where its discovery document is. */
  issuer: string;
  origin: string;
  clientId: string;
  clientSecret: string;
  /** Applied to every ID token issued until the next reset. */
  forge: Forge | undefined;
  /** Access token lifetime for the next issued tokens, in seconds. */
  accessTokenTtl: number;
  /** Requests served, by kind. */
  counts: { discovery: number; jwks: number; authorizationCode: number; refresh: number };
  /** Every token handed out since the last reset. */
  issued: { codes: string[]; accessTokens: string[]; refreshTokens: string[]; idTokens: string[] };
  /** Publishes a new RSA key and signs with it from now on (the old one stays published); its kid. */
  rotate(): string;
  /** Plays the user who signs in at this authorization URL: the redirect back to the app. */
  authorize(authorizationUrl: string): Promise<URL>;
  reset(): void;
  close(): Promise<void>;
}

export interface TestIssuerOptions {
  redirectUris: string[];
  clientId?: string;
  clientSecret?: string;
  /** The `iss` of its discovery document and tokens (default: its own origin). */
  issuer?: string;
  /** `id_token_signing_alg_values_supported`; default `['RS256']`. */
  algorithms?: string[];
  /** Whether the discovery document names the JWK Set (`jwks_uri`); default true. */
  publishKeys?: boolean;
}

interface Grant {
  redirectUri: string;
  scope: string;
  /** A refresh token is issued: `offline_access` asked for, or Google's `access_type=offline`. */
  offline: boolean;
  nonce?: string | undefined;
  codeChallenge?: string | undefined;
}

// RSA keys take a while to make: each is made once per process, on first use, and shared by every
// issuer (each its own server: sharing keys across them changes nothing for a test).
const rsaKeys: KeyPairKeyObjectResult[] = [];
function rsaKey(index: number): KeyPairKeyObjectResult {
  while (rsaKeys.length <= index) rsaKeys.push(generateKeyPairSync('rsa', { modulusLength: 2048 }));
  return rsaKeys[index] as KeyPairKeyObjectResult;
}
let ecKey: KeyPairKeyObjectResult | undefined;

export async function startTestIssuer(options: TestIssuerOptions): Promise<TestIssuer> {
  const clientId = options.clientId ?? 'id-token-app';
  const clientSecret = options.clientSecret ?? 'id-token-app-secret-0123456789abcdef';
  // Key 0 is never published: the foreign key. Key 1 signs first; each rotation takes the next.
  const foreign = rsaKey(0);
  const signing = [{ ...rsaKey(1), kid: 'kid-1' }];
  ecKey ??= generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ec = ecKey;
  const codes = new Map<string, Grant>();
  const refreshTokens = new Map<string, Grant>();

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, { error: 'server_error' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = options.issuer ?? origin;

  const state: TestIssuer = {
    issuer,
    origin,
    clientId,
    clientSecret,
    forge: undefined,
    accessTokenTtl: 3600,
    counts: { discovery: 0, jwks: 0, authorizationCode: 0, refresh: 0 },
    issued: { codes: [], accessTokens: [], refreshTokens: [], idTokens: [] },
    rotate() {
      const kid = `kid-${signing.length + 1}`;
      signing.push({ ...rsaKey(signing.length + 1), kid });
      return kid;
    },
    authorize,
    reset() {
      state.forge = undefined;
      state.accessTokenTtl = 3600;
      state.counts = { discovery: 0, jwks: 0, authorizationCode: 0, refresh: 0 };
      state.issued = { codes: [], accessTokens: [], refreshTokens: [], idTokens: [] };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      state.counts.discovery++;
      return send(res, 200, {
        issuer,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        ...(options.publishKeys === false ? {} : { jwks_uri: `${origin}/jwks` }),
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: options.algorithms ?? ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        code_challenge_methods_supported: ['S256'],
        scopes_supported: ['openid', 'email', 'offline_access'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') {
      state.counts.jwks++;
      const keys = [
        ...signing.map(({ publicKey, kid }) => ({ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' })),
        { ...ec.publicKey.export({ format: 'jwk' }), kid: 'kid-ec', use: 'sig', alg: 'ES256' },
      ];
      return send(res, 200, { keys });
    }
    if (req.method === 'GET' && url.pathname === '/authorize') return authorizeRequest(res, url.searchParams);
    if (req.method === 'POST' && url.pathname === '/token') return token(req, res, new URLSearchParams(await body(req)));
    send(res, 404, { error: 'not_found' });
  }

  function authorizeRequest(res: ServerResponse, params: URLSearchParams): void {
    const redirectUri = params.get('redirect_uri') ?? '';
    if (params.get('client_id') !== clientId || !options.redirectUris.includes(redirectUri)) {
      return send(res, 400, { error: 'invalid_request', error_description: 'unknown client or redirect_uri' });
    }
    const back = new URL(redirectUri);
    if (params.get('response_type') !== 'code' || params.get('code_challenge_method') !== 'S256') {
      back.searchParams.set('error', 'invalid_request');
    } else {
      const code = randomBytes(24).toString('base64url');
      state.issued.codes.push(code);
      const scope = params.get('scope') ?? '';
      codes.set(code, {
        redirectUri,
        scope,
        offline: scope.split(' ').includes('offline_access') || params.get('access_type') === 'offline',
        nonce: params.get('nonce') ?? undefined,
        codeChallenge: params.get('code_challenge') ?? undefined,
      });
      back.searchParams.set('code', code);
    }
    const requestState = params.get('state');
    if (requestState !== null) back.searchParams.set('state', requestState);
    res.writeHead(302, { location: back.href }).end();
  }

  async function token(req: IncomingMessage, res: ServerResponse, form: URLSearchParams): Promise<void> {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = basic
      ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent)
      : [form.get('client_id'), form.get('client_secret')];
    if (id !== clientId || secret !== clientSecret) return send(res, 401, { error: 'invalid_client' });
    let grant: Grant | undefined;
    if (form.get('grant_type') === 'authorization_code') {
      state.counts.authorizationCode++;
      const code = form.get('code') ?? '';
      grant = codes.get(code);
      codes.delete(code);
      const challenge = createHash('sha256')
        .update(form.get('code_verifier') ?? '')
        .digest('base64url');
      if (!grant || grant.redirectUri !== form.get('redirect_uri') || grant.codeChallenge !== challenge) {
        return send(res, 400, { error: 'invalid_grant' });
      }
    } else if (form.get('grant_type') === 'refresh_token') {
      state.counts.refresh++;
      grant = refreshTokens.get(form.get('refresh_token') ?? '');
      if (!grant) return send(res, 400, { error: 'invalid_grant' });
      grant = { ...grant, nonce: undefined }; // a refreshed ID token carries no nonce
    } else {
      return send(res, 400, { error: 'unsupported_grant_type' });
    }
    const scopes = grant.scope.split(' ');
    const accessToken = randomBytes(24).toString('base64url');
    state.issued.accessTokens.push(accessToken);
    // Not rotated (as Google's): the same refresh token is good for the next refresh.
    let refreshToken = form.get('refresh_token') ?? undefined;
    if (refreshToken === undefined && grant.offline) {
      refreshToken = randomBytes(32).toString('base64url');
      refreshTokens.set(refreshToken, grant);
      state.issued.refreshTokens.push(refreshToken);
    }
    const idToken = scopes.includes('openid') ? signIdToken(grant) : undefined;
    if (idToken !== undefined) state.issued.idTokens.push(idToken);
    send(res, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: state.accessTokenTtl,
      scope: grant.scope,
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      ...(idToken === undefined ? {} : { id_token: idToken }),
    });
  }

  function signIdToken(grant: Grant): string {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      sub: 'user-1',
      aud: clientId,
      exp: now + 600,
      iat: now,
      auth_time: now,
      ...(grant.nonce === undefined ? {} : { nonce: grant.nonce }),
      email: 'user-1@example.com',
    };
    const current = signing.at(-1) as (typeof signing)[number];
    const kit: ForgeKit = {
      key: current.privateKey,
      kid: current.kid,
      foreignKey: foreign.privateKey,
      ecKey: ec.privateKey,
      clientId,
      clientSecret,
      jws,
    };
    return state.forge
      ? state.forge(claims, kit)
      : jws({ alg: 'RS256', typ: 'JWT', kid: current.kid }, claims, current.privateKey);
  }

  async function authorize(authorizationUrl: string): Promise<URL> {
    const answer = await fetch(authorizationUrl, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
    const location = answer.headers.get('location');
    if (answer.status !== 302 || !location) throw new Error(`authorization refused (${answer.status}): ${await answer.text()}`);
    return new URL(location);
  }

  return state;
}

/** See `ForgeKit.jws`. */
export function jws(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject | string | null): string {
  const input = [header, payload].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.');
  let signature: Buffer;
  if (key === null) signature = Buffer.alloc(0);
  else if (typeof key === 'string') signature = createHmac('sha256', key).update(input).digest();
  else if (key.asymmetricKeyType === 'ec') signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  else signature = sign('sha256', Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}

function send(res: ServerResponse, status: number, json: unknown): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(json));
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
