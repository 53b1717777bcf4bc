/**
 * Provider profiles: a typed, declarative description of how a provider differs from standard
 * OAuth 2.0. A preset is a profile plus the user's credentials; nothing in the flow ever tests a
 * provider's name. Profiles are compiled onto openid-client (see wire.ts), so its validation
 * still runs on a normalised response.
 */

/** Where the client credentials go on a token, refresh or revocation request. */
export type ClientAuthPlacement =
  /** `Authorization: Basic base64(client_id:client_secret)` (RFC 6749 §2.3.1). */
  | { in: 'basic' }
  /** Body fields with any names; `id: null` sends no client id. */
  | { in: 'body'; id?: string | null; secret: string }
  /** The secret in a named header (Cal.com's `x-cal-secret-key`). */
  | { in: 'header'; name: string }
  /** Public client: only `client_id` in the body. */
  | { in: 'none' };

/** How one token endpoint request is made. URLs may hold `{clientId}`. */
export interface TokenRequestProfile {
  /** Full URL. For `refresh`, defaults to the token request's URL. May end in a valueless flag (`?refresh`), kept literally. */
  url?: string;
  /** Default `form`. */
  encoding?: 'form' | 'json';
  /** Default `{ in: 'basic' }`. */
  clientAuth?: ClientAuthPlacement;
  /** Code exchange only: `bearer` sends the code as `Authorization: Bearer <code>` instead of in the body. */
  code?: 'body' | 'bearer';
  /** Standard parameters not to send: `grant_type`, `redirect_uri`, `code_verifier`, `client_id`. */
  omit?: readonly string[];
  /** Wire names of standard parameters, e.g. `{ refresh_token: 'refreshToken' }`. */
  rename?: Readonly<Record<string, string>>;
  /** Extra headers, e.g. GitHub's `accept: application/json`. */
  headers?: Readonly<Record<string, string>>;
  /** Code exchange only: also send the login's `state` (Dropbox Sign asks for it). */
  sendState?: boolean;
}

/** How a token response maps onto a TokenSet. Paths are dot-paths into the JSON body. */
export interface TokenResponseProfile {
  /** A wrapper object holding the tokens (`data` in `{status, data}`); used when present, tolerated when absent. */
  envelope?: string;
  accessToken?: string;
  refreshToken?: string;
  scope?: string;
  tokenType?: string;
  /** Default `{ kind: 'seconds', path: 'expires_in' }`. */
  expiry?:
    | { kind: 'seconds' | 'epoch-ms' | 'epoch-seconds'; path: string }
    /** Seconds, unless the value is larger than 1e9: then an epoch in seconds (Dropbox Sign's docs say both). */
    | { kind: 'seconds-or-epoch'; path: string }
    | { kind: 'none' };
  /** When the refresh token expires, if the provider says (Cal.com's `refreshTokenExpiresAt`). Same kinds as `expiry`. */
  refreshExpiry?: TokenResponseProfile['expiry'];
  /** `token_type` when the provider sends none. Default `Bearer`. */
  defaultTokenType?: string;
  /** Set false to drop an `id_token` the provider sends but whose issuer cannot be checked (multi-tenant Microsoft). */
  idToken?: boolean;
  /** Fields to keep as `extras` (dot-paths; the last segment names the extra). Default: every unmapped top-level field. */
  extras?: readonly string[];
}

/** How to revoke at logout. */
export type RevokeProfile =
  /** RFC 7009 `token=…&token_type_hint=…`. */
  | { kind: 'rfc7009'; url: string; clientAuth?: ClientAuthPlacement }
  /** Any other request, authenticated with the token itself (`bearer`) or the client credentials (`basic`). */
  | {
      kind: 'request';
      /**
       * May hold `{name}` placeholders filled from the tokens' `extras` at logout (Sunshine's
       * `https://{subdomain}.zendesk.com/...`). Each value must be a DNS label (letters, digits,
       * inner hyphens; 63 at most), so that no provider answer can send the token to another host.
       */
      url: string;
      method: 'DELETE' | 'POST';
      auth: 'bearer' | 'basic';
      /** Send `{ "access_token": … }` as JSON (GitHub's grant deletion). */
      tokenInBody?: boolean;
    };

/**
 * After the code exchange, a `GET` with the new access token (as a bearer) whose JSON answer adds
 * extras: what the token response does not say, such as the account the token belongs to
 * (Sunshine's `tokenInfo`). Its failure never fails the login: the extras are then missing, and a
 * revocation that needs one of them asks again.
 */
export interface TokenInfoProfile {
  url: string;
  /** Extras to keep: the extra's name, then a dot-path in the answer (`{ subdomain: 'app.subdomain' }`). */
  extras: Readonly<Record<string, string>>;
  /** Extras that name a host (a subdomain): kept only when a DNS label, else left out. */
  dnsLabels?: readonly string[];
}

export interface ProviderProfile {
  /** What kind of provider this is, for messages ('pipedrive'). */
  name: string;
  /** An OpenID Connect provider with known endpoints: a `nonce` is sent and the ID token's `iss` must equal this. */
  oidc?: { issuer: string };
  authorization: {
    /**
     * Where browsers are sent to log in. Absent when the provider has no browser login (Cal.com's
     * platform managed users): the app then imports the tokens it obtained server-side
     * (`importTokens`), and the login route answers `login_unavailable`.
     */
    url?: string;
    /** Authorization parameters never to send: `scope`, `response_type`, `redirect_uri`. */
    omit?: ReadonlyArray<'scope' | 'response_type' | 'redirect_uri'>;
    /** PKCE S256. Default true. */
    pkce?: boolean;
    /**
     * `always` (default): a callback without `state` is refused. `optional`: the provider may not
     * echo it; the transaction cookie is then the only binding of the callback to the login.
     * `restart`: echoed for logins the app starts, but flows started at the provider come without
     * it: such a callback, to a browser with no login in flight, is sent through the app's login.
     */
    state?: 'always' | 'optional' | 'restart';
    /** `error=` values meaning the user declined, besides `access_denied` (Pipedrive's `user_denied`). */
    deniedErrors?: readonly string[];
    /** Joins scopes. Default ' '. */
    scopeSeparator?: string;
    /** The provider refuses a login without scopes (Slack, Cal.com): none configured is `config_invalid` at start-up. */
    scopesRequired?: boolean;
    /** Scope parameter name. Default `scope` (Slack's user tokens: `user_scope`). */
    scopeParam?: string;
  };
  token: TokenRequestProfile & { url: string };
  /** Differences of the refresh request from the token request; `false` when the provider has no refresh. */
  refresh?: TokenRequestProfile | false;
  response?: TokenResponseProfile;
  /** When the refresh answer is shaped differently (Slack). Defaults to `response`. */
  refreshResponse?: TokenResponseProfile;
  revoke?: RevokeProfile;
  /** A request after the code exchange that adds extras (Sunshine's `tokenInfo`). */
  tokenInfo?: TokenInfoProfile;
  errors?: {
    /**
     * Where this provider's error bodies keep `error` and `error_description`, as dot-paths (array
     * items by index: `faults.0.id`). Tried in order, before the built-in reader of the common shapes
     * (RFC 6749, `{error, message}`, `{error: {error_name, error_msg}}`, `{status: "error", error:
     * {code, message}}`, `{errors: [...]}`); the first whose `error` path holds a string or number wins.
     */
    read?: ReadonlyArray<{ error: string; description?: string }>;
    /** Provider error codes that mean a standard one: `{ invalid_refresh_token: 'invalid_grant' }`. */
    aliases?: Readonly<Record<string, string>>;
    /** Last word on an error's standard code, from the HTTP status and what was read of the body. */
    classify?: (status: number, error: { error: string; description?: string | undefined }) => string | undefined;
  };
  /**
   * A request that mints new tokens for a grant whose refresh token was refused (Cal.com's
   * force-refresh of a managed user), made with the refresh request's client authentication and
   * read like its answer. `{clientId}` and `{name}` placeholders in the URL are filled from the
   * client id and the grant's `extras` (an absent extra means no recovery).
   */
  recover?: { url: string };
  /** API answers that mean "the access token expired", for `req.oauth.fetch`. Default `[401]`. */
  expiredStatuses?: readonly number[];
}

/** The options every preset takes. */
export interface PresetOptions {
  clientId: string;
  clientSecret?: string | undefined;
  scopes?: readonly string[] | undefined;
  /** Extra authorization parameters (`prompt`, ...). Never overrides state, PKCE, nonce or redirect_uri. */
  authorizationParams?: Readonly<Record<string, string>> | undefined;
  /** Replace any URL: sandboxes, regions, self-hosted installs, tests. */
  endpoints?: Partial<Record<'authorization' | 'token' | 'refresh' | 'revoke' | 'recover' | 'tokenInfo', string>> | undefined;
  /** Per-request timeout towards the provider, in seconds. Default 10. */
  timeoutSeconds?: number | undefined;
  /**
   * Extra headers on every request to the provider's token, refresh, revocation and token-info
   * endpoints (a Zendesk Marketplace bot's `X-Zendesk-Marketplace-*`); never on the browser's
   * redirect. Headers the library sets itself (`authorization`, `content-type`, `accept`, a
   * client-credential header, ...) cannot be given: such a key is `config_invalid` at start-up.
   */
  headers?: Readonly<Record<string, string>> | undefined;
}
