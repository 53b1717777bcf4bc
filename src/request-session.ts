/**
 * The tokens of one session, whichever store keeps them. Loaded on first use, at most once per
 * request; writes go to the store (and to the response's cookies) as they happen.
 *
 * Where the tokens live:
 * - cookie store: sealed in a cookie of their provider's own (`oauth_session-<provider>`);
 * - server store: sealed at rest under a key, which is the subject (`user:<id>`) when the app names
 *   one, else a random session id sealed in the provider's own cookie.
 *
 * One cookie per provider: two callbacks of one browser for two providers, answered at the same
 * instant, each write their own cookie, and neither login is lost to the other's (one session
 * cookie for all would keep only the one written last).
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

/** What a provider's session cookie holds: its tokens (cookie store) or a session id (server stores). */
type CookieRecord = { tokens: StoredTokens } | { sid: string };

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
  // Server stores: the app's user key, or else each provider's session id (from its cookie).
  #subjectKey: string | undefined;
  readonly #sids = new Map<string, string>();
  // Cookie store: how many cookies each provider's tokens take (the total is bounded by maxChunks).
  readonly #chunks = new Map<string, number>();
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

  /** Where a server store keeps this session's tokens of `provider` (for locks and fresh reads); undefined for the cookie store. */
  async sharedKey(provider: string): Promise<string | undefined> {
    // Stryker disable next-line ConditionalExpression: a cookie-store session has no key either way; this saves the read.
    if (this.#config.store.kind !== 'server') return undefined;
    await this.load();
    return this.#keyOf(provider);
  }

  #keyOf(provider: string): string | undefined {
    return this.#subjectKey ?? this.#sids.get(provider);
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
    const key = await this.sharedKey(provider);
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
      const key = this.#keyOf(provider);
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
   * meanwhile by anyone else are never overwritten (then nothing is written: the store keeps theirs).
   * A write that fails is remembered, so that writing the same tokens again later (a request that
   * holds them) stays fenced on the same value.
   */
  async writeShared(key: string, provider: string, tokens: StoredTokens, expected?: string): Promise<void> {
    const store = this.#config.store;
    if (store.kind !== 'server') return;
    if (expected !== undefined) unwritten.set(tokens, { key, expected });
    await this.#putSealed(store, key, provider, tokens);
    unwritten.delete(tokens);
  }

  /**
   * Before a login's tokens are stored, a cookie-keyed server session of that provider gets a new
   * id, so a session id planted in the browser beforehand (session fixation) never sees the new
   * tokens; what the old id held is removed. Cookie-store sessions need nothing: the tokens travel
   * in a cookie nobody else can read.
   */
  renew(provider: string): Promise<void> {
    const store = this.#config.store;
    if (store.kind !== 'server') return Promise.resolve();
    const next = this.#writes.then(async () => {
      await this.load();
      const previous = this.#sids.get(provider);
      // Stryker disable next-line ConditionalExpression: a session keyed by user has no session ids; this says why it stops.
      if (previous === undefined || this.#subjectKey !== undefined) return;
      this.#sids.delete(provider);
      await guard(() => store.remove(previous, provider));
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
    const providers = Object.keys(this.#config.providers);
    if (store.kind === 'cookie') {
      const record: Record<string, StoredTokens> = {};
      for (const provider of providers) {
        const cookie = await this.#readCookie(provider);
        if (cookie && 'tokens' in cookie) record[provider] = cookie.tokens;
      }
      return record;
    }
    const subject = await this.#subject();
    if (subject !== undefined) {
      this.#subjectKey = `user:${subject}`;
      return this.#unsealAll(await guard(() => store.get(`user:${subject}`, providers)));
    }
    const sealed: Record<string, string> = {};
    for (const provider of providers) {
      const cookie = await this.#readCookie(provider);
      if (!cookie || !('sid' in cookie)) continue;
      this.#sids.set(provider, cookie.sid);
      const found = (await guard(() => store.get(cookie.sid, [provider])))[provider];
      if (found !== undefined) sealed[provider] = found;
    }
    return this.#unsealAll(sealed);
  }

  /** The cookie a provider's session lives in: `oauth_session-google` (chunked when large). */
  #cookieName(provider: string): string {
    return `${this.#config.cookieName}-${provider}`;
  }

  async #readCookie(provider: string): Promise<CookieRecord | undefined> {
    const { cookies } = this.#source;
    const sealed = cookies ? readChunked(cookies, this.#cookieName(provider)) : undefined;
    if (sealed === undefined) return undefined;
    const record = await this.#sealer.unseal<CookieRecord>(sealed, { cache: true });
    if (record) this.#chunks.set(provider, chunkCount(sealed)); // an unreadable cookie is overwritten by the next write
    return record;
  }

  async #readEntry(store: ServerTokenStore, key: string, provider: string): Promise<SharedEntry | undefined> {
    const sealed = (await guard(() => store.get(key, [provider])))[provider];
    if (sealed === undefined) return undefined;
    // Stryker disable next-line BooleanLiteral: the unseal cache saves work, never changes what is read.
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
        else await this.#renewSidCookie(provider);
      } else await this.#writeCookie(provider, tokens && { tokens });
      this.#loaded = Promise.resolve(updated);
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  async #writeServer(store: ServerTokenStore, provider: string, tokens: StoredTokens | undefined): Promise<void> {
    let key = this.#keyOf(provider);
    if (!tokens) {
      // Stryker disable next-line ConditionalExpression: a session without an id has nothing stored under any key; removing an unknown key removes nothing
      if (key !== undefined) await guard(() => store.remove(key as string, provider));
      // Stryker disable next-line ConditionalExpression: deleting a cookie the request does not carry writes nothing
      if (this.#sids.delete(provider)) await this.#writeCookie(provider, undefined);
      return;
    }
    if (key === undefined) {
      key = randomBytes(32).toString('base64url');
      this.#sids.set(provider, key);
    }
    await this.#putSealed(store, key, provider, tokens);
    await this.#renewSidCookie(provider);
  }

  /** A provider's session id cookie, written (again) on every write: a session in use never reaches its Max-Age. */
  async #renewSidCookie(provider: string): Promise<void> {
    const sid = this.#sids.get(provider);
    // Stryker disable next-line ConditionalExpression: a session keyed by app user holds no session id (its read returns before any cookie)
    if (sid !== undefined && this.#subjectKey === undefined) await this.#writeCookie(provider, { sid });
  }

  /** Writes sealed tokens; fenced (see `writeShared`) when a fenced write of these very tokens is pending. */
  async #putSealed(store: ServerTokenStore, key: string, provider: string, tokens: StoredTokens): Promise<void> {
    // Every key expires: with the refresh token when the provider says when, else with the session
    // cookie that finds it (renewed on every write), or after the longest lifetime for a user's key.
    const unknown = key === this.#sids.get(provider) ? this.#config.sessionMaxAgeSeconds : UNKNOWN_LIFETIME_SECONDS;
    const ttl = Math.min(lifetime(tokens) ?? unknown, UNKNOWN_LIFETIME_SECONDS);
    // Stryker disable next-line BooleanLiteral: the unseal cache saves work, never changes what is read.
    const sealed = await this.#sealer.seal(tokens, ttl, { cache: true });
    const fence = unwritten.get(tokens);
    const putIf = store.putIf?.bind(store);
    if (fence?.key === key && putIf) {
      // Not written when someone else wrote since: theirs is newer than these.
      await guard(() => putIf(key, provider, sealed, ttl, fence.expected));
      unwritten.delete(tokens);
      return;
    }
    await guard(() => store.put(key, provider, sealed, ttl));
  }

  /** Writes (or with `undefined`, deletes) a provider's session cookie. */
  async #writeCookie(provider: string, record: CookieRecord | undefined): Promise<void> {
    const { cookies } = this.#source;
    if (!cookies) return;
    // Stryker disable next-line BooleanLiteral: the unseal cache saves work, never changes what is read.
    const sealed = record && (await this.#sealer.seal(record, this.#config.sessionMaxAgeSeconds, { cache: true }));
    const { store } = this.#config;
    if (sealed && store.kind === 'cookie') {
      // The budget is for all providers together: it is what the Cookie header of every request carries.
      let others = 0;
      for (const [name, count] of this.#chunks) if (name !== provider) others += count;
      if (others + chunkCount(sealed) > store.maxChunks) {
        throw new OAuthError(
          'session_too_large',
          `These tokens need more than ${store.maxChunks} cookies. Keep tokens server-side instead (memoryStore() or redisStore()).`,
        );
      }
    }
    if (sealed === undefined) this.#chunks.delete(provider);
    else this.#chunks.set(provider, chunkCount(sealed));
    if (!writeChunked(cookies, this.#cookieName(provider), sealed, this.#attributes)) {
      this.#config.hooks.onError(
        new Error('The session changed after the response head was sent; the new session cookie could not be set.'),
      );
    }
  }
}

/** How many cookies `writeChunked` makes of a sealed value. */
function chunkCount(sealed: string): number {
  return Math.max(1, Math.ceil(sealed.length / CHUNK_SIZE));
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
