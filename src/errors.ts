/**
 * Stable error codes. Match on `code`, never on the message.
 */
export type OAuthErrorCode =
  | 'config_invalid'
  | 'unknown_provider'
  | 'login_unavailable'
  | 'state_mismatch'
  | 'access_denied'
  | 'invalid_callback'
  | 'not_connected'
  | 'reauth_required'
  | 'provider_error'
  | 'provider_unavailable'
  | 'invalid_response'
  | 'store_unavailable'
  | 'session_too_large'
  | 'cross_site_request';

const STATUS: Readonly<Record<OAuthErrorCode, number>> = Object.freeze({
  config_invalid: 500,
  unknown_provider: 404,
  // A provider whose tokens the app imports (Cal.com platform managed users): no browser login.
  login_unavailable: 404,
  state_mismatch: 400,
  access_denied: 403,
  invalid_callback: 400,
  not_connected: 401,
  reauth_required: 401,
  provider_error: 502,
  provider_unavailable: 503,
  invalid_response: 502,
  store_unavailable: 503,
  // The provider's tokens do not fit the app's cookies: an upstream answer this app cannot keep.
  session_too_large: 502,
  cross_site_request: 403,
});

export interface OAuthErrorOptions {
  provider?: string | undefined;
  /** The provider's own `error` value, for `provider_error` and `access_denied`. */
  error?: string | undefined;
  /** The provider's own `error_description`, kept for diagnosis. */
  errorDescription?: string | undefined;
  /** For `config_invalid`: the configuration field at fault, such as `providers.google.clientId`. */
  field?: string | undefined;
  cause?: unknown;
}

/**
 * The one error this library throws. `status` is the HTTP status an adapter answers with;
 * `expose` tells Koa (and the Express error handler) that the message is safe to show.
 * Messages never contain a token, a secret or an authorization code.
 *
 * @example
 * ```ts
 * try { await req.oauth.getToken('github'); }
 * catch (err) { if (err instanceof OAuthError && err.code === 'reauth_required') res.redirect('/auth/github/login'); }
 * ```
 */
export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly provider: string | undefined;
  readonly error: string | undefined;
  readonly errorDescription: string | undefined;
  readonly field: string | undefined;

  constructor(code: OAuthErrorCode, message: string, options: OAuthErrorOptions = {}) {
    // The standard `cause`: own, non-enumerable (a low-level cause may hold a raw Response or
    // request; logs that serialise the error's own properties leave it out), and absent when none.
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.code = code;
    this.status = STATUS[code];
    // Every message is written to be shown; only a configuration error is for the operator.
    this.expose = code !== 'config_invalid';
    this.provider = options.provider;
    this.error = options.error;
    this.errorDescription = options.errorDescription;
    this.field = options.field;
  }

  /**
   * The JSON body an adapter sends for this error: our code and message, and the provider's
   * `error` only when it is a registered code. No text of the provider's own reaches a response
   * (it may quote what it was sent); the app and the hooks read it from `errorDescription`.
   */
  toJSON(): { error: OAuthErrorCode; message: string; provider?: string; provider_error?: string } {
    // JSON leaves out the members that are undefined.
    return {
      error: this.code,
      message: this.message,
      provider: this.provider,
      provider_error: REGISTERED_ERRORS.has(this.error ?? '') ? this.error : undefined,
    };
  }
}

// Error codes registered for OAuth 2.0 (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1)
// and OpenID Connect (Core §3.1.2.6): fixed words, safe to show.
const REGISTERED_ERRORS: ReadonlySet<string> = new Set([
  'invalid_request',
  'unauthorized_client',
  'access_denied',
  'unsupported_response_type',
  'invalid_scope',
  'server_error',
  'temporarily_unavailable',
  'invalid_client',
  'invalid_grant',
  'unsupported_grant_type',
  'invalid_token',
  'insufficient_scope',
  'unsupported_token_type',
  'interaction_required',
  'login_required',
  'account_selection_required',
  'consent_required',
  'invalid_request_uri',
  'invalid_request_object',
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
]);

/**
 * The same error naming the provider it happened with, every secret of the request it came from
 * (code, PKCE verifier, tokens, client credentials) taken out of the provider's text, in clear or
 * URL-encoded: a provider may quote what it was sent, as it received it. The one place provider
 * text is redacted, and cut to 300 characters only then: cut first, a secret across the cut would
 * leave a piece no redaction finds.
 */
export function forProvider(err: OAuthError, provider: string, secrets: ReadonlyArray<string | undefined>): OAuthError {
  const redact = (text: string | undefined) => {
    if (text === undefined) return undefined;
    let safe = text;
    for (const secret of secrets) {
      if (!secret) continue;
      for (const form of new Set([secret, encodeURIComponent(secret)])) safe = safe.split(form).join('[redacted]');
    }
    return safe.slice(0, 300);
  };
  return new OAuthError(err.code, err.message, {
    provider,
    error: redact(err.error),
    errorDescription: redact(err.errorDescription),
    field: err.field,
    cause: err.cause,
  });
}

/** Whether a value is an OAuthError, also across copies of this package (checks the code). */
export function isOAuthError(value: unknown): value is OAuthError {
  return value instanceof OAuthError || (value instanceof Error && value.name === 'OAuthError' && 'code' in value);
}
