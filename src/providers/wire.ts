/**
 * Compiles a provider profile onto openid-client's own extension point, its custom fetch:
 * openid-client builds a standard request, this rewrites it into the provider's dialect (encoding,
 * credential and code placement, URLs), and turns the provider's answer back into a standard one,
 * so openid-client's response validation still runs. Hand-written: no library translates
 * arbitrary OAuth dialects.
 */
import type { CustomFetch } from 'openid-client';
import { OAuthError } from '../errors.js';
import type {
  ClientAuthPlacement,
  ProviderProfile,
  TokenInfoProfile,
  TokenRequestProfile,
  TokenResponseProfile,
} from './profile.js';

export interface WireSettings {
  profile: ProviderProfile;
  clientId: string;
  clientSecret: string | undefined;
  /** Resolved URLs (overrides applied, `{clientId}` filled in). */
  urls: { token: string; refresh: string; revoke?: string | undefined };
  /** The app's extra headers (`PresetOptions.headers`), checked at start-up to set nothing the library sets. */
  headers?: Readonly<Record<string, string>> | undefined;
}

/** The custom fetch that speaks the provider's dialect on token, refresh and RFC 7009 revocation requests. */
export function dialectFetch(settings: WireSettings): CustomFetch {
  const { profile } = settings;
  const tokenHref = new URL(settings.urls.token).href;
  const revokeHref = settings.urls.revoke ? new URL(settings.urls.revoke).href : undefined;
  const refreshProfile: TokenRequestProfile = { ...profile.token, ...(profile.refresh || {}) };

  return async (url, options) => {
    // openid-client hands over a fetch-compatible request; only its body type is narrower than fetch's.
    // Its token and revocation requests carry their fields as URLSearchParams.
    const init = options as RequestInit;
    const href = new URL(url).href;
    const params = new URLSearchParams(init.body instanceof URLSearchParams ? init.body : undefined);
    if (href === revokeHref && profile.revoke?.kind === 'rfc7009') {
      const request = encodeRequest({ encoding: 'form', clientAuth: profile.revoke.clientAuth }, params, settings);
      return fetch(settings.urls.revoke as string, { ...init, ...request });
    }
    // Stryker disable next-line ConditionalExpression: openid-client sends nothing else through a profile's fetch today (no discovery, no keys).
    if (href !== tokenHref) return fetch(url, init);
    const refreshing = params.get('grant_type') === 'refresh_token';
    const spec = refreshing ? refreshProfile : profile.token;
    const target = refreshing ? settings.urls.refresh : settings.urls.token;
    const response = await fetch(target, { ...init, ...encodeRequest(spec, params, settings) });
    const shape = (refreshing ? profile.refreshResponse : undefined) ?? profile.response ?? {};
    return standardResponse(response, shape, profile);
  };
}

/**
 * The profile's `recover` request (Cal.com's force-refresh), sent with the refresh request's client
 * authentication and read like its answer: RFC 6749 JSON of the new tokens, or an OAuthError.
 */
export async function recoverTokens(settings: WireSettings, url: string, timeoutSeconds: number): Promise<unknown> {
  const { profile } = settings;
  const spec: TokenRequestProfile = { ...profile.token, ...(profile.refresh || {}) };
  const request = encodeRequest(spec, new URLSearchParams(), settings);
  const response = await fetch(url, { method: 'POST', ...request, signal: AbortSignal.timeout(timeoutSeconds * 1000) });
  const shape = profile.refreshResponse ?? profile.response ?? {};
  const standard = await standardResponse(response, shape, profile);
  const json = (await standard.json().catch(() => undefined)) as { error?: string; error_description?: string } | undefined;
  if (standard.ok) return json;
  if (standard.status === 429 || standard.status >= 500) {
    throw new OAuthError('provider_unavailable', 'The provider did not answer in time or failed.');
  }
  throw new OAuthError('provider_error', 'The provider refused the request.', {
    error: json?.error,
    errorDescription: json?.error_description,
  });
}

/**
 * The profile's `tokenInfo` request: `GET` with the access token as a bearer, the answer's mapped
 * fields as extras. An extra listed in `dnsLabels` is kept only when it is a DNS label: it will
 * name a host. Throws OAuthError (refused, unavailable, not a JSON object); network failures are
 * the caller's to translate.
 */
export async function readTokenInfo(
  spec: TokenInfoProfile,
  request: { url: string; accessToken: string; headers?: Readonly<Record<string, string>> | undefined; timeoutSeconds: number },
): Promise<Record<string, unknown>> {
  const headers = new Headers(request.headers);
  headers.set('accept', 'application/json');
  headers.set('authorization', `Bearer ${request.accessToken}`);
  const response = await fetch(request.url, { headers, signal: AbortSignal.timeout(request.timeoutSeconds * 1000) });
  const json = parseJson(await response.text());
  if (!response.ok) {
    const code = response.status === 429 || response.status >= 500 ? 'provider_unavailable' : 'provider_error';
    throw new OAuthError(code, `The provider refused the token-info request (${response.status}).`);
  }
  if (!isObject(json)) throw new OAuthError('invalid_response', 'The token-info answer is not a JSON object.');
  const extras: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(spec.extras)) {
    const value = at(json, path);
    if (value === undefined || (spec.dnsLabels?.includes(name) && !isDnsLabel(value))) continue;
    extras[name] = value;
  }
  return extras;
}

/** One label of a host name (RFC 1123): what may be put into a URL's host without choosing another host. */
export function isDnsLabel(value: unknown): value is string {
  return typeof value === 'string' && /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(value);
}

function encodeRequest(
  spec: TokenRequestProfile,
  params: URLSearchParams,
  settings: WireSettings,
): { headers: Headers; body: string } {
  const fields = new Map(params);
  const headers = new Headers(settings.headers);
  headers.set('accept', 'application/json');
  for (const [name, value] of Object.entries(spec.headers ?? {})) headers.set(name, value);
  // openid-client sends the client id (and never a secret: it is configured as a public client);
  // placed below, where the provider wants it.
  fields.delete('client_id');
  // Stryker disable next-line ArrayDeclaration: deleting a field that no request has changes nothing.
  for (const name of spec.omit ?? []) fields.delete(name);
  placeCredentials(spec.clientAuth ?? { in: 'basic' }, settings, fields, headers);
  const code = fields.get('code');
  if (spec.code === 'bearer' && code !== undefined) {
    headers.set('authorization', `Bearer ${code}`);
    fields.delete('code');
  }
  const wire = [...fields].map(([name, value]) => [spec.rename?.[name] ?? name, value] as [string, string]);
  if (spec.encoding === 'json') {
    headers.set('content-type', 'application/json');
    return { headers, body: JSON.stringify(Object.fromEntries(wire)) };
  }
  headers.set('content-type', 'application/x-www-form-urlencoded');
  return { headers, body: new URLSearchParams(wire).toString() };
}

function placeCredentials(
  auth: ClientAuthPlacement,
  settings: WireSettings,
  fields: Map<string, string>,
  headers: Headers,
): void {
  // Stryker disable next-line StringLiteral: only a public client has no secret, and its placement sends none.
  const secret = settings.clientSecret ?? '';
  switch (auth.in) {
    case 'basic':
      headers.set('authorization', basicCredentials(settings.clientId, secret));
      return;
    case 'body':
      if (auth.id !== null) fields.set(auth.id ?? 'client_id', settings.clientId);
      fields.set(auth.secret, secret);
      return;
    case 'header':
      headers.set(auth.name, secret);
      return;
    case 'none':
      fields.set('client_id', settings.clientId);
  }
}

/**
 * `Authorization: Basic` client credentials, for every request that carries them: RFC 6749 §2.3.1
 * form-encodes id and secret before base64 (a `:` in the id would otherwise split it wrongly).
 */
export function basicCredentials(clientId: string, clientSecret: string): string {
  const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${btoa(`${formEncode(clientId)}:${formEncode(clientSecret)}`)}`;
}

/**
 * The provider's answer, re-expressed as RFC 6749 JSON for openid-client. An error's description is
 * kept as the provider wrote it: the flow takes the request's secrets out (see `forProvider`).
 */
async function standardResponse(response: Response, shape: TokenResponseProfile, profile: ProviderProfile): Promise<Response> {
  const text = await response.text();
  const json = parseJson(text);
  if (!isObject(json)) {
    // Not JSON: keep status and type; openid-client reports it (5xx: unavailable, else invalid).
    return new Response(text, {
      status: response.status,
      // Stryker disable next-line ObjectLiteral,StringLiteral: openid-client reads such an answer by its status alone.
      headers: { 'content-type': response.headers.get('content-type') ?? 'text/plain' },
    });
  }
  const root = shape.envelope && isObject(json[shape.envelope]) ? (json[shape.envelope] as Record<string, unknown>) : json;
  const accessToken = at(root, shape.accessToken ?? 'access_token');
  const error = readError(json, profile.errors?.read);
  if (!response.ok || (error && typeof accessToken !== 'string')) {
    const status = response.ok ? 400 : response.status;
    // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: a 5xx is unavailable whatever its error says.
    const found = error ?? { error: response.status >= 500 ? 'server_error' : 'invalid_request' };
    const code = profile.errors?.classify?.(status, found) ?? profile.errors?.aliases?.[found.error] ?? found.error;
    // No WWW-Authenticate header here: openid-client would read a 401 challenge instead of the body.
    return jsonResponse(status, { error: code, error_description: found.description });
  }
  return jsonResponse(200, tokenBody(root, accessToken, shape));
}

/**
 * A token answer the app obtained from the provider itself (Cal.com's managed-user creation), read
 * as the token endpoint's answers are: RFC 6749 JSON, or undefined when it holds no access token.
 */
export function standardAnswer(profile: ProviderProfile, answer: unknown): Record<string, unknown> | undefined {
  if (!isObject(answer)) return undefined;
  const shape = profile.response ?? {};
  const root = shape.envelope && isObject(answer[shape.envelope]) ? (answer[shape.envelope] as Record<string, unknown>) : answer;
  const accessToken = at(root, shape.accessToken ?? 'access_token');
  return typeof accessToken === 'string' && accessToken !== '' ? tokenBody(root, accessToken, shape) : undefined;
}

function tokenBody(root: Record<string, unknown>, accessToken: unknown, shape: TokenResponseProfile): Record<string, unknown> {
  const mapped = new Set<string>();
  const take = (path: string) => {
    mapped.add(path.split('.')[0] as string);
    return at(root, path);
  };
  const tokenType = take(shape.tokenType ?? 'token_type');
  const body: Record<string, unknown> = {
    access_token: accessToken,
    // openid-client accepts only bearer and DPoP; Slack's `user` / `bot` tokens are bearer tokens too.
    token_type:
      typeof tokenType === 'string' && /^(bearer|dpop)$/i.test(tokenType) ? tokenType : (shape.defaultTokenType ?? 'Bearer'),
  };
  if (shape.accessToken) take(shape.accessToken); // the standard name is the body's own: never an extra
  const refreshToken = take(shape.refreshToken ?? 'refresh_token');
  if (typeof refreshToken === 'string' && refreshToken !== '') body.refresh_token = refreshToken;
  const scope = take(shape.scope ?? 'scope');
  if (typeof scope === 'string') body.scope = scope;
  const expiresIn = secondsLeft(root, shape.expiry ?? { kind: 'seconds', path: 'expires_in' }, take);
  // An expiry that is there but is no time ("soon", -5, 1e400, {}) makes the whole answer suspect,
  // as openid-client rules for `expires_in` on the standard path: kept without it, the token would
  // never be refreshed. A missing one (absent, or null) means the token has no given lifetime.
  if (Number.isNaN(expiresIn)) {
    throw new OAuthError('invalid_response', "The provider's token answer gives an access token expiry that is not a time.");
  }
  // Stryker disable next-line ConditionalExpression: an undefined field is left out of the JSON all the same.
  if (expiresIn !== undefined) body.expires_in = expiresIn;
  // The refresh token's expiry only shortens how long a server store keeps the tokens: one that is
  // no time is left out, as on the standard path.
  const refreshExpiresIn = secondsLeft(root, shape.refreshExpiry ?? { kind: 'seconds', path: 'refresh_token_expires_in' }, take);
  // Stryker disable next-line ConditionalExpression,LogicalOperator: NaN goes into the JSON as null, which is read as no lifetime too.
  if (refreshExpiresIn !== undefined && !Number.isNaN(refreshExpiresIn)) body.refresh_token_expires_in = refreshExpiresIn;
  const idToken = take('id_token');
  // Stryker disable next-line ConditionalExpression: an ID token that is not text is dropped where the answer is read (openid.ts) as well.
  if (typeof idToken === 'string' && shape.idToken !== false) body.id_token = idToken;
  if (shape.extras) {
    for (const path of shape.extras) {
      const value = at(root, path);
      if (value !== undefined) body[path.split('.').at(-1) as string] = value;
    }
  } else {
    for (const [key, value] of Object.entries(root)) if (!mapped.has(key) && !(key in body)) body[key] = value;
  }
  return body;
}

/**
 * Seconds left until an expiry the answer gives in the profile's unit: undefined when it gives none
 * (absent or null); NaN when the field holds something that is no time: text that is not a number,
 * a negative value, a number too large to be finite (`1e400`), an object.
 */
function secondsLeft(
  root: Record<string, unknown>,
  expiry: NonNullable<TokenResponseProfile['expiry']>,
  take: (path: string) => unknown,
): number | undefined {
  if (expiry.kind === 'none') return undefined;
  const raw = take(expiry.path);
  if (raw === undefined || raw === null) return undefined;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return Number.NaN;
  const now = Date.now() / 1000;
  const seconds =
    expiry.kind === 'epoch-ms'
      ? value / 1000 - now
      : expiry.kind === 'epoch-seconds' || (expiry.kind === 'seconds-or-epoch' && value > 1e9)
        ? value - now
        : value;
  return Math.max(0, Math.floor(seconds));
}

/**
 * An error, read first where the profile says (`errors.read`), then from any of the shapes seen in
 * the wild: RFC 6749 `{error, error_description}`, `{error, message}` (Pipedrive),
 * `{error: {error_name, error_msg}}` (Dropbox Sign), `{status: "error", error: {code, message}}`
 * (Cal.com), `{errors: [{code, title}]}` (Sunshine), `{ok: false, error}` (Slack).
 */
function readError(
  json: Record<string, unknown>,
  paths: NonNullable<ProviderProfile['errors']>['read'] = [],
): { error: string; description?: string | undefined } | undefined {
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  for (const path of paths) {
    const code = at(json, path.error);
    const error = Number.isFinite(code) ? String(code) : text(code); // a finite number only: isFinite does not coerce
    if (error !== undefined) return { error, description: path.description ? text(at(json, path.description)) : undefined };
  }
  const { error } = json;
  if (typeof error === 'string' && error !== '') {
    return { error, description: text(json.error_description) ?? text(json.message) };
  }
  if (isObject(error)) {
    return {
      error: text(error.error_name) ?? text(error.code) ?? text(error.error) ?? 'error',
      description: text(error.error_msg) ?? text(error.message) ?? text(error.error_description),
    };
  }
  const first = Array.isArray(json.errors) ? json.errors[0] : undefined;
  if (isObject(first)) return { error: text(first.code) ?? 'error', description: text(first.title) ?? text(first.detail) };
  if (json.status === 'error' || json.ok === false) return { error: 'error', description: text(json.message) };
  return undefined;
}

/** The value at a dot-path; a numeric segment indexes an array (`errors.0.code`). */
function at(root: Record<string, unknown>, path: string): unknown {
  let value: unknown = root;
  for (const key of path.split('.')) {
    value = Array.isArray(value) && /^\d+$/.test(key) ? value[Number(key)] : isObject(value) ? value[key] : undefined;
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}
