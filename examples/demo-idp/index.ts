/**
 * A local OpenID Connect provider for the examples and the tests: oidc-provider with its
 * development login form, which accepts any user name and password. Never use it for real users.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata } from 'oidc-provider';
import { listen } from '../listen.js';

export interface DemoIdpOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  clients: ClientMetadata[];
  /** Access token lifetime in seconds, read at each issue, so tests can change it between calls. Default 3600. */
  accessTokenTtl?: () => number;
  /**
   * Issue access tokens as signed JWTs (RFC 9068) for one API resource, as many real providers do,
   * instead of short opaque strings. Such tokens are not accepted at userinfo.
   */
  jwtAccessTokens?: boolean;
  /** Called before the server starts: add Koa middleware (counters, fault injection) with `provider.use`. */
  configure?: (provider: Provider) => void;
}

export interface DemoIdp {
  /** `http://127.0.0.1:<port>`, exactly as the discovery document spells it. */
  issuer: string;
  /** The userinfo endpoint, to call with an access token. */
  userinfo: string;
  provider: Provider;
  close(): Promise<void>;
}

/**
 * Starts the demo identity provider.
 *
 * @example
 * ```ts
 * const idp = await startDemoIdp({ clients: [{ client_id: 'app', client_secret: 'secret', redirect_uris: [callback] }] });
 * ```
 */
export async function startDemoIdp(options: DemoIdpOptions): Promise<DemoIdp> {
  const server: Server = createServer();
  await listen(server, options.port ?? 0, 'IDP_PORT');
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

  const provider = new Provider(issuer, {
    clients: options.clients.map((c) => ({
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...c,
    })),
    // Any user name signs in; its claims are made up from it.
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: sub, email: `${sub}@example.test`, email_verified: true };
        },
      };
    },
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    features: {
      devInteractions: { enabled: true },
      // A client may revoke only its own tokens.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      ...(options.jwtAccessTokens ? { resourceIndicators: jwtResource(() => options.accessTokenTtl?.() ?? 3600) } : {}),
    },
    rotateRefreshToken: true,
    pkce: { required: () => true },
    jwks: { keys: [{ ...signingKey, use: 'sig', alg: 'RS256', kid: 'demo' }] as never },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: () => options.accessTokenTtl?.() ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
    },
  });
  options.configure?.(provider);
  server.on('request', provider.callback());

  return {
    issuer,
    userinfo: `${issuer}/me`,
    provider,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const API_RESOURCE = 'urn:demo:api';

/** Every token is for one API, in JWT format, with the configured lifetime. */
function jwtResource(ttl: () => number) {
  return {
    enabled: true,
    defaultResource: () => API_RESOURCE,
    useGrantedResource: () => true,
    getResourceServerInfo: () => ({ scope: 'api', accessTokenFormat: 'jwt' as const, accessTokenTTL: ttl() }),
  };
}
