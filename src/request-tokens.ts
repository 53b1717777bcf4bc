/**
 * The per-request token API (`req.oauth`, `ctx.oauth`, `oauth.tokens(user)`): the tokens of one
 * session, refreshed when due, handed out, imported, revoked.
 */
import type { ResolvedConfig } from './config.js';
import { isOAuthError, OAuthError } from './errors.js';
import type { ProviderSeam } from './provider-seam.js';
import type { Refresher } from './refresher.js';
import type { RequestSession } from './request-session.js';
import type { StoredTokens } from './stores/types.js';
import {
  type ImportedTokens,
  importedTokens,
  isCooldown,
  isDue,
  isExpired,
  type RefreshCoordinator,
  type TokenSet,
  toStored,
  toTokenSet,
} from './tokens.js';

/**
 * The per-request API: `req.oauth` in Express, `ctx.oauth` in Koa.
 *
 * @example
 * ```ts
 * const { accessToken } = await req.oauth.getToken('google');
 * ```
 */
export interface OAuthContext {
  /** A valid access token, refreshed first when due. Throws `OAuthError` (`not_connected`, `reauth_required`, ...). */
  getToken(provider: string): Promise<TokenSet>;
  /** Whether tokens are stored for this provider (does not refresh). */
  isConnected(provider: string): Promise<boolean>;
  /** The configured providers that tokens are stored for. */
  connections(): Promise<string[]>;
  /** Revokes at the provider where it can (RFC 7009), then deletes the tokens. */
  logout(provider: string): Promise<void>;
  /**
   * `fetch` with the provider's access token attached. When the API answers that the token expired
   * (401; Cal.com also 498), refreshes once and retries once, unless the body was a stream that
   * cannot be sent twice.
   */
  fetch(provider: string, input: string | URL, init?: RequestInit): Promise<Response>;
  /**
   * Keeps tokens the app obtained without a browser login, as a login would (then `getToken`
   * refreshes them when due, exactly once): tokens minted server-side (Cal.com's platform managed
   * users), or migrated from another library. Throws `config_invalid` for malformed fields,
   * `invalid_response` for a provider answer that holds no token.
   *
   * @example
   * ```ts
   * const created = await (await fetch(`https://api.cal.com/v2/oauth-clients/${clientId}/users`, { ... })).json();
   * await oauth.tokens(userId).importTokens('cal', { answer: created, extras: { userId: created.data.user.id } });
   * ```
   */
  importTokens(provider: string, tokens: ImportedTokens): Promise<void>;
}

/** What every request's token API shares: the configuration, the providers, refresh coordination. */
export interface TokenParts {
  readonly config: ResolvedConfig;
  readonly providers: ProviderSeam;
  readonly refresher: Refresher;
  readonly coordinator: RefreshCoordinator;
}

/**
 * One session's tokens. The public methods are bound (arrow functions): `const { getToken } =
 * req.oauth` works.
 */
export class RequestTokens implements OAuthContext {
  readonly #parts: TokenParts;
  readonly #session: RequestSession;

  constructor(parts: TokenParts, session: RequestSession) {
    this.#parts = parts;
    this.#session = session;
  }

  async #stored(name: string): Promise<StoredTokens | undefined> {
    this.#parts.providers.definition(name);
    const record = await this.#session.load();
    return Object.hasOwn(record, name) ? record[name] : undefined;
  }

  async #current(name: string): Promise<{ saved: StoredTokens; tokens: StoredTokens }> {
    const saved = await this.#stored(name);
    const tokens = saved && this.#parts.coordinator.latest(name, saved);
    if (saved && !tokens) await this.#session.remove(name); // logged out elsewhere: a stale copy
    if (!saved || !tokens) throw new OAuthError('not_connected', 'Not connected to this provider.', { provider: name });
    return { saved, tokens };
  }

  /** Hands out `tokens`, writing them to the session first when they are newer than what it holds. */
  async #use(name: string, saved: StoredTokens, tokens: StoredTokens): Promise<TokenSet> {
    if (tokens !== saved) {
      const key = this.#parts.refresher.persistedKey(tokens);
      // Stryker disable next-line ConditionalExpression: both undefined is a cookie session, which keeps no shared copy and reads no `persisted`.
      await this.#session.put(name, tokens, { persisted: key !== undefined && key === (await this.#session.sharedKey(name)) });
    }
    return toTokenSet(tokens);
  }

  /** Refreshes and stores; a dead grant forgets the tokens, provider trouble keeps them. */
  async #renew(name: string, saved: StoredTokens, tokens: StoredTokens, refreshToken: string): Promise<TokenSet> {
    let fresh: StoredTokens;
    try {
      fresh = await this.#parts.refresher.refresh(name, tokens, refreshToken, this.#session);
    } catch (error) {
      // Already an OAuthError naming the provider (the seam's, the refresher's), or the store's.
      if (!isOAuthError(error)) throw error;
      // Stryker disable next-line ConditionalExpression: only a provider_error carries the provider's own error code.
      if (error.code === 'provider_error' && error.error === 'invalid_grant') {
        await this.#session.endRefused(name, saved, tokens);
        throw new OAuthError('reauth_required', 'The provider no longer accepts this login. Please sign in again.', {
          provider: name,
          error: error.error,
          errorDescription: error.errorDescription,
        });
      }
      // Provider trouble: keep the tokens, and hand out the old access token while it still works.
      if ((error.code === 'provider_unavailable' || error.code === 'invalid_response') && !isExpired(tokens)) {
        if (!isCooldown(error)) this.#parts.config.hooks.onError(error); // a cooldown's failure was reported when it happened
        return this.#use(name, saved, tokens);
      }
      throw error;
    }
    return this.#use(name, saved, fresh);
  }

  readonly getToken = async (name: string): Promise<TokenSet> => {
    const { saved, tokens } = await this.#current(name);
    if (!isDue(tokens, this.#parts.config.refreshSkewSeconds)) return this.#use(name, saved, tokens);
    // Response already streaming: a refresh now would spend a refresh token whose successor
    // could not be stored. The current token does while it lasts.
    if (!this.#session.canPersist() && !isExpired(tokens)) return toTokenSet(tokens);
    if (tokens.refreshToken) return this.#renew(name, saved, tokens, tokens.refreshToken);
    if (!isExpired(tokens)) return this.#use(name, saved, tokens);
    await this.#session.remove(name);
    throw new OAuthError('reauth_required', 'The access token expired and cannot be refreshed.', { provider: name });
  };

  /** After the API refused `rejected`: a newer token if another request already got one, else a refresh; undefined when none can be had. */
  async #replace(name: string, rejected: string): Promise<TokenSet | undefined> {
    const { saved, tokens } = await this.#current(name);
    if (tokens.accessToken !== rejected) return this.#use(name, saved, tokens);
    // As in getToken: no refresh once its successor could no longer be stored.
    if (!tokens.refreshToken || !this.#session.canPersist()) return undefined;
    return this.#renew(name, saved, tokens, tokens.refreshToken);
  }

  readonly importTokens = async (name: string, imported: ImportedTokens): Promise<void> => {
    this.#parts.providers.definition(name);
    const read = 'answer' in imported ? await this.#parts.providers.readTokens(name, imported.answer) : importedTokens(imported);
    const tokens = toStored({ ...read, extras: { ...read.extras, ...imported.extras } });
    await this.#session.renew(name); // as at a login: a new session, never one a visitor could have planted
    this.#parts.coordinator.revive(name, tokens);
    await this.#session.put(name, tokens);
    this.#parts.config.hooks.onLogin({ provider: name, claims: undefined });
  };

  readonly isConnected = async (name: string): Promise<boolean> => {
    return (await this.#stored(name)) !== undefined;
  };

  readonly connections = async (): Promise<string[]> => {
    const record = await this.#session.load();
    // Stryker disable next-line MethodExpression: the session reads configured providers only; kept for a store that answers more than asked.
    return Object.keys(record).filter((name) => Object.hasOwn(this.#parts.config.providers, name));
  };

  readonly logout = async (name: string): Promise<void> => {
    const saved = await this.#stored(name);
    if (!saved) return;
    const tokens = this.#parts.coordinator.latest(name, saved) ?? saved;
    this.#parts.coordinator.end(name, saved, tokens);
    await this.#parts.providers.revoke(name, tokens);
    await this.#session.remove(name);
    this.#parts.config.hooks.onLogout({ provider: name });
  };

  readonly fetch = async (name: string, input: string | URL, init: RequestInit = {}): Promise<Response> => {
    const { expiredStatuses } = this.#parts.providers.definition(name);
    const send = (token: TokenSet) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `${token.tokenType} ${token.accessToken}`);
      return fetch(input, { ...init, headers });
    };
    const token = await this.getToken(name);
    const response = await send(token);
    if (!expiredStatuses.includes(response.status) || !replayable(init.body)) return response;
    const fresh = await this.#replace(name, token.accessToken);
    if (!fresh || fresh.accessToken === token.accessToken) return response;
    await response.body?.cancel();
    return send(fresh);
  };
}

/** Whether a request body can be sent a second time (a stream can be read only once). */
function replayable(body: RequestInit['body']): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof Blob ||
    body instanceof FormData ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body)
  );
}
