/**
 * A local OAuth 2.0 token endpoint whose answers a test writes, for what no real server does on
 * demand: tokens of a chosen length, a refresh answer without `refresh_token`, an error that quotes
 * the request. It also serves a discovery document (for `oidc()`), and records every token request.
 * Pair it with `oauth2({ authorization: `${origin}/authorize`, token: `${origin}/token`, ... })`.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenRequest {
  /** The form fields, decoded. */
  params: URLSearchParams;
  /** The raw body, as sent. */
  body: string;
  authorization: string | undefined;
}

export interface TokenAnswer {
  status: number;
  body: unknown;
}

export interface TokenEndpoint {
  origin: string;
  /** Every token request so far, oldest first. */
  requests: TokenRequest[];
  /** Every revocation request (RFC 7009, `POST /revoke`) so far, oldest first; each is answered 200. */
  revocations: TokenRequest[];
  /** What the endpoint answers; replace it at will. Default: fresh 30 s tokens with a new refresh token. */
  answer: (request: TokenRequest) => TokenAnswer;
  close(): Promise<void>;
}

let issued = 0;

/** Fresh tokens: a bearer access token of `length` characters, due at first use with the 60 s skew. */
export function freshTokens(options: { length?: number; refreshToken?: string | false } = {}): Record<string, unknown> {
  issued += 1;
  const length = options.length ?? 40;
  const access = `at-${issued}-${'x'.repeat(length)}`.slice(0, length);
  return {
    access_token: access,
    token_type: 'Bearer',
    expires_in: 30,
    ...(options.refreshToken === false ? {} : { refresh_token: options.refreshToken ?? `rt-${issued}` }),
  };
}

export async function startTokenEndpoint(): Promise<TokenEndpoint> {
  const endpoint: TokenEndpoint = {
    origin: '',
    requests: [],
    revocations: [],
    answer: () => ({ status: 200, body: freshTokens() }),
    close: async () => undefined,
  };
  const server = createServer(async (req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: endpoint.origin,
        authorization_endpoint: `${endpoint.origin}/authorize`,
        token_endpoint: `${endpoint.origin}/token`,
        jwks_uri: `${endpoint.origin}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if ((req.url !== '/token' && req.url !== '/revoke') || req.method !== 'POST') return json(404, { error: 'not_found' });
    const body = await text(req);
    const request: TokenRequest = { params: new URLSearchParams(body), body, authorization: req.headers.authorization };
    if (req.url === '/revoke') {
      endpoint.revocations.push(request);
      return res.writeHead(200).end();
    }
    endpoint.requests.push(request);
    const { status, body: answer } = endpoint.answer(request);
    return json(status, answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  endpoint.close = () => new Promise((resolve) => server.close(() => resolve()));
  return endpoint;
}

function text(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (data += chunk));
    req.on('end', () => resolve(data));
  });
}
