/**
 * A local OAuth 2.0 token endpoint whose answers a test writes, for what no real server does on
 * demand: tokens of a chosen length, a refresh answer without `refresh_token`, an error that quotes
 * the request, a provider's own dialect. It also serves a discovery document (for `oidc()`), and
 * records every request. Pair it with `oauth2({ authorization: `${origin}/authorize`, token:
 * `${origin}/token`, ... })`, or a profile whose token URLs are under `${origin}/token` (any path and
 * query), whose revocation URL is under `${origin}/revoke`, and whose token-info URL is `${origin}/info`.
 * An API the tokens are for answers under `${origin}/api`.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenRequest {
  /** The form fields, decoded. */
  params: URLSearchParams;
  /** The raw body, as sent. */
  body: string;
  authorization: string | undefined;
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
}

export interface TokenAnswer {
  status: number;
  /** Sent as JSON, unless `contentType` is given: then as it is (a string). */
  body: unknown;
  contentType?: string;
  /** Headers of the answer besides its content type, such as `www-authenticate`. */
  headers?: Record<string, string>;
}

export interface TokenEndpoint {
  origin: string;
  /** Every token request so far, oldest first. */
  requests: TokenRequest[];
  /** Every revocation request (any method under `/revoke`) so far, oldest first. */
  revocations: TokenRequest[];
  /** Every token-info request (`GET /info`) so far, oldest first. */
  infoRequests: TokenRequest[];
  /** Every request to the API (any method under `/api`) so far, oldest first. */
  apiRequests: TokenRequest[];
  /** What the endpoint answers; replace it at will. Default: fresh 30 s tokens with a new refresh token. */
  answer: (request: TokenRequest) => TokenAnswer | Promise<TokenAnswer>;
  /** What a revocation gets. Default: 200, no body. */
  revokeAnswer: (request: TokenRequest) => TokenAnswer;
  /** What a token-info request gets. Default: 404. */
  infoAnswer: (request: TokenRequest) => TokenAnswer;
  /** What an API request gets. Default: 200 `{ ok: true }`. */
  apiAnswer: (request: TokenRequest) => TokenAnswer | Promise<TokenAnswer>;
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
    infoRequests: [],
    apiRequests: [],
    answer: () => ({ status: 200, body: freshTokens() }),
    revokeAnswer: () => ({ status: 200, body: '', contentType: 'text/plain' }),
    infoAnswer: () => ({ status: 404, body: { error: 'not_found' } }),
    apiAnswer: () => ({ status: 200, body: { ok: true } }),
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
    const url = req.url ?? '/';
    const path = new URL(url, 'http://endpoint').pathname;
    const body = await text(req);
    const request: TokenRequest = {
      params: new URLSearchParams(body),
      body,
      authorization: req.headers.authorization,
      method: req.method ?? 'GET',
      url,
      headers: req.headers,
    };
    const send = ({ status, body: answer, contentType, headers }: TokenAnswer) => {
      for (const [name, value] of Object.entries(headers ?? {})) res.setHeader(name, value);
      if (contentType === undefined) return json(status, answer);
      return res.writeHead(status, { 'content-type': contentType }).end(answer as string);
    };
    if (path.startsWith('/revoke')) {
      endpoint.revocations.push(request);
      return send(endpoint.revokeAnswer(request));
    }
    if (path === '/info' && req.method === 'GET') {
      endpoint.infoRequests.push(request);
      return send(endpoint.infoAnswer(request));
    }
    if (path.startsWith('/api')) {
      endpoint.apiRequests.push(request);
      return send(await endpoint.apiAnswer(request));
    }
    if (!path.startsWith('/token') || req.method !== 'POST') return json(404, { error: 'not_found' });
    endpoint.requests.push(request);
    return send(await endpoint.answer(request));
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
