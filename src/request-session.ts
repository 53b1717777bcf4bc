/**
 * The tokens of one session, whichever store keeps them. Loaded on first use, at most once per
 * request; writes go to the store (and to the response's cookies) as they happen.
 *
 * Where the tokens live:
 * - cookie store: sealed in the session cookie itself;
 * - server store: sealed at rest under a key, which is the subject (`user:<id>`) when the app names
 *   one, else a random session id sealed in the session cookie.
 */
import { randomBytes } from 'node:crypto';
import type { ResolvedConfig } from './config.js';
import { OAuthError } from './errors.js';
import {
  CHUNK_SIZE,
  type CookieAttributes,
  nowSeconds,
  type RequestCookies,
  readChunked,
  type Sealer,
  writeChunked,
} from './session.js';
import type { ServerTokenStore, StoredTokens, TokenRecord } from './stores/types.js';

/** What the session cookie holds: the tokens themselves (cookie store) or a session id (server stores). */
type CookieRecord = { tokens: TokenRecord } | { sid: string };

/** One provider's value in a server store: as stored (sealed), and unsealed (undefined when it no longer unseals). */
export interface SharedEntry {
  sealed: string;
  tokens: StoredTokens | undefined;
}

// Refreshed tokens whose fenced write failed (store trouble), with the key and the value it was
// fenced on: the request that then writes them again (this one, or a later one in this process
// that learnt them as a successor) writes them only over that same value.
const unwritten = new WeakMap<StoredTokens, { key: string; expected: string }>();

/** Where a session's key comes from. */
export interface SessionSource {
  /** The request's cookies; absent for `oauth.tokens(subject)` outside a request. */
  cookies?: RequestCookies | undefined;
  /** The app's user id for this request, when the app keys tokens by user. */
  subject?: (() => Promise<string | undefined>) | undefined;
}

// Tokens keyed by app user whose lifetime nobody told us are kept this long at most.
const UNKNOWN_LIFETIME_SECONDS = 400 * 24 * 3600;

export class RequestSession {
  readonly #config: ResolvedConfig;
  readonly #sealer: Sealer;
  readonly #source: SessionSource;
  #loaded: Promise<TokenRecord> | undefined;
  #key: Promise<string | undefined> | undefined;
  #sid: string | undefined;
  // Writes of one request are applied in order, each on the result of the previous one.
  #writes: Promise<unknown> = Promise.resolve();

  constructor(config: ResolvedConfig, sealer: Sealer, source: SessionSource) {
    this.#config = config;
    this.#sealer = sealer;
    this.#source = source;
  }

  load(): Promise<TokenRecord> {
    this.#loaded ??= this.#read();
    return this.#loaded;
  }

  /**
   * Whether new tokens would reach their store: false for cookie-store tokens once the response
   * head is sent (a refresh then would spend a refresh token whose successor cannot be kept).
   */
  canPersist(): boolean {
    const { cookies } = this.#source;
    return this.#config.store.kind !== 'cookie' || cookies === undefined || cookies.writable();
  }

  /** The store key of a server-store session (for locks and fresh reads); undefined for the cookie store. */
  async sharedKey(): Promise<string | undefined> {
    if (this.#config.store.kind !== 'server') return undefined;
    await this.load();
    return this.#key;
  }

  /** One provider's tokens as the server store holds them right now (other instances may have written). */
  async readShared(provider: string): Promise<StoredTokens | undefined> {
    return (await this.readSharedEntry(provider))?.tokens;
  }

  /**
   * As `readShared`, with the sealed value they were read from (what a fenced write or removal
   * compares with); `tokens` is undefined for a value that no longer unseals (expired, foreign).
   */
  async readSharedEntry(provider: string): Promise<SharedEntry | undefined> {
    const store = this.#config.store;
    const key = await this.sharedKey();
    if (store.kind !== 'server' || key === undefined) return undefined;
    return this.#readEntry(store, key, provider);
  }

  /** Stores tokens. `persisted`: a server store already holds them (written under the refresh lock). */
  put(provider: string, tokens: StoredTokens, options: { persisted?: boolean } = {}): Promise<void> {
    return this.#write(provider, tokens, options.persisted === true);
  }

  remove(provider: string): Promise<void> {
    return this.#write(provider, undefined, false);
  }

  /**
   * Removes one provider's tokens after the provider refused them (`invalid_grant`), but only if
   * the server store still holds these (`refused`: the tokens as read, and their successor in this
   * process) or a value that no longer unseals; tokens written since (a sibling's refresh, a new
   * login) are kept, and become this session's. Atomic where the store has `removeIf`. Other
   * stores: as `remove`.
   */
  removeRefused(provider: string, ...refused: readonly StoredTokens[]): Promise<void> {
    const store = this.#config.store;
    if (store.kind !== 'server') return this.remove(provider);
    const next = this.#writes.then(async () => {
      const { [provider]: _refused, ...others } = await this.load();
      const key = await this.#key;
      const entry = key === undefined ? undefined : await this.#readEntry(store, key, provider);
      const current = entry?.tokens;
      const newer = current !== undefined && !refused.some((tokens) => sameTokens(tokens, current));
      if (key !== undefined && entry && !newer) {
        const removeIf = store.removeIf?.bind(store);
        // Removed, or not: a value written between this read and the removal is newer still.
        if (removeIf) await guard(() => removeIf(key, provider, entry.sealed));
        else await guard(() => store.remove(key, provider));
      }
      this.#loaded = Promise.resolve(newer ? { ...others, [provider]: current } : others);
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  /**
   * Writes refreshed tokens under a key, for the refresh lock's holder: only over `expected` (the
   * sealed value it read under the lock) when the store can compare (`putIf`), so tokens written
   * meanwhile by anyone else are never overwritten. Resolves false when they were: nothing written.
   * A write that fails is remembered, so that writing the same tokens again later (a request that
   * holds them) stays fenced on the same value.
   */
  async writeShared(key: string, provider: string, tokens: StoredTokens, expected?: string): Promise<boolean> {
    const store = this.#config.store;
    if (store.kind !== 'server') return true;
    if (expected !== undefined) unwritten.set(tokens, { key, expected });
    const written = await this.#putSealed(store, key, provider, tokens);
    unwritten.delete(tokens);
    return written;
  }

  /**
   * After a login, a cookie-keyed server session moves to a new id (its tokens with it), so a
   * session id planted in the browser beforehand (session fixation) never sees the new tokens.
   * Cookie-store sessions need nothing: the tokens travel in a cookie nobody else can read.
   */
  renew(): Promise<void> {
    const store = this.#config.store;
    if (store.kind !== 'server') return Promise.resolve();
    const next = this.#writes.then(async () => {
      const record = await this.load();
      const previous = this.#sid;
      if (previous === undefined || (await this.#subject()) !== undefined) return;
      this.#sid = undefined;
      this.#key = Promise.resolve(undefined);
      for (const [provider, tokens] of Object.entries(record)) await this.#writeServer(store, provider, tokens);
      for (const provider of Object.keys(record)) await guard(() => store.remove(previous, provider));
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  get #attributes(): CookieAttributes {
    return { path: '/', maxAge: this.#config.sessionMaxAgeSeconds, secure: this.#config.secureCookies };
  }

  #subject(): Promise<string | undefined> {
    return this.#source.subject?.() ?? Promise.resolve(undefined);
  }

  async #read(): Promise<TokenRecord> {
    const store = this.#config.store;
    const cookie = await this.#readCookie();
    if (store.kind === 'cookie') return cookie && 'tokens' in cookie ? cookie.tokens : {};
    if (cookie && 'sid' in cookie) this.#sid = cookie.sid;
    const subject = await this.#subject();
    const key = subject !== undefined ? `user:${subject}` : this.#sid;
    this.#key = Promise.resolve(key);
    if (key === undefined) return {};
    const sealed = await guard(() => store.get(key, Object.keys(this.#config.providers)));
    return this.#unsealAll(sealed);
  }

  async #readCookie(): Promise<CookieRecord | undefined> {
    const { cookies } = this.#source;
    const sealed = cookies ? readChunked(cookies, this.#config.cookieName) : undefined;
    return sealed ? this.#sealer.unseal<CookieRecord>(sealed, { cache: true }) : undefined;
  }

  async #readEntry(store: ServerTokenStore, key: string, provider: string): Promise<SharedEntry | undefined> {
    const sealed = (await guard(() => store.get(key, [provider])))[provider];
    if (sealed === undefined) return undefined;
    return { sealed, tokens: await this.#sealer.unseal<StoredTokens>(sealed, { cache: true }) };
  }

  async #unsealAll(sealed: Readonly<Record<string, string>>): Promise<TokenRecord> {
    const record: Record<string, StoredTokens> = {};
    for (const [provider, value] of Object.entries(sealed)) {
      const tokens = await this.#sealer.unseal<StoredTokens>(value, { cache: true });
      if (tokens) record[provider] = tokens;
    }
    return record;
  }

  #write(provider: string, tokens: StoredTokens | undefined, persisted: boolean): Promise<void> {
    const next = this.#writes.then(async () => {
      const current = await this.load();
      const { [provider]: _previous, ...others } = current;
      const updated: TokenRecord = tokens ? { ...others, [provider]: tokens } : others;
      const store = this.#config.store;
      if (store.kind === 'server') {
        if (!persisted) await this.#writeServer(store, provider, tokens);
        else await this.#renewSidCookie(await this.#key);
      } else await this.#writeCookie({ tokens: updated }, Object.keys(updated).length === 0);
      this.#loaded = Promise.resolve(updated);
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  async #writeServer(store: ServerTokenStore, provider: string, tokens: StoredTokens | undefined): Promise<void> {
    let key = await this.#key;
    if (!tokens) {
      if (key !== undefined) await guard(() => store.remove(key as string, provider));
      return;
    }
    if (key === undefined) {
      this.#sid = randomBytes(32).toString('base64url');
      key = this.#sid;
      this.#key = Promise.resolve(key);
    }
    await this.#putSealed(store, key, provider, tokens);
    await this.#renewSidCookie(key);
  }

  /** The session id cookie, written (again) on every write: a session in use never reaches its Max-Age. */
  async #renewSidCookie(key: string | undefined): Promise<void> {
    if (this.#sid !== undefined && this.#sid === key) await this.#writeCookie({ sid: this.#sid }, false);
  }

  /** Writes sealed tokens; fenced (see `writeShared`) when a fenced write of these very tokens is pending. Resolves whether written. */
  async #putSealed(store: ServerTokenStore, key: string, provider: string, tokens: StoredTokens): Promise<boolean> {
    // Every key expires: with the refresh token when the provider says when, else with the session
    // cookie that finds it (renewed on every write), or after the longest lifetime for a user's key.
    const unknown = key === this.#sid ? this.#config.sessionMaxAgeSeconds : UNKNOWN_LIFETIME_SECONDS;
    const ttl = Math.min(lifetime(tokens) ?? unknown, UNKNOWN_LIFETIME_SECONDS);
    const sealed = await this.#sealer.seal(tokens, ttl, { cache: true });
    const fence = unwritten.get(tokens);
    const putIf = store.putIf?.bind(store);
    if (fence?.key === key && putIf) {
      const written = await guard(() => putIf(key, provider, sealed, ttl, fence.expected));
      unwritten.delete(tokens);
      return written;
    }
    await guard(() => store.put(key, provider, sealed, ttl));
    return true;
  }

  async #writeCookie(record: CookieRecord, empty: boolean): Promise<void> {
    const { cookies } = this.#source;
    if (!cookies) return;
    const sealed = empty ? undefined : await this.#sealer.seal(record, this.#config.sessionMaxAgeSeconds, { cache: true });
    const { store } = this.#config;
    if (sealed && store.kind === 'cookie' && sealed.length > store.maxChunks * CHUNK_SIZE) {
      throw new OAuthError(
        'session_too_large',
        `These tokens need more than ${store.maxChunks} cookies. Keep tokens server-side instead (memoryStore() or redisStore()).`,
      );
    }
    if (!writeChunked(cookies, this.#config.cookieName, sealed, this.#attributes)) {
      this.#config.hooks.onError(
        new Error('The session changed after the response head was sent; the new session cookie could not be set.'),
      );
    }
  }
}

/** Whether two copies hold the same tokens (a refresh changes the access token, a rotation the refresh token). */
function sameTokens(a: StoredTokens, b: StoredTokens): boolean {
  return a.accessToken === b.accessToken && a.refreshToken === b.refreshToken;
}

/**
 * How long stored tokens are worth keeping: until the refresh token expires when the provider says
 * when, until the access token expires when there is nothing to refresh with, else unknown.
 */
function lifetime(tokens: StoredTokens): number | undefined {
  const until = tokens.refreshToken ? tokens.refreshExpiresAt : tokens.expiresAt;
  return until === undefined ? undefined : Math.max(60, until - nowSeconds() + 60);
}

/** Store failures become `store_unavailable`; the store's own message may name hosts, so it stays in `cause`. */
export async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    throw new OAuthError('store_unavailable', 'The token store is unavailable.', { cause: err });
  }
}
