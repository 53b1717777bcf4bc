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
import type { CookieTokenStore, ServerTokenStore, StoreLock, StoredTokens, TokenRecord } from './stores/types.js';
import type { RefreshCoordinator } from './tokens.js';

/** What a provider's session cookie holds: its tokens (cookie store) or a session id (server stores). */
type CookieRecord = { tokens: StoredTokens } | { sid: string };

/** One provider's value in a server store: as stored (sealed), and unsealed (undefined when it no longer unseals). */
export interface SharedEntry {
  sealed: string;
  tokens: StoredTokens | undefined;
}

/** A server store's cross-process lock on refreshing one session's tokens of one provider. */
export interface RefreshLock {
  /** Where the store keeps them. */
  key: string;
  lock: (name: string, ttlMs: number) => Promise<StoreLock | undefined>;
}

/**
 * The tokens of one session, as the configured store keeps them: `CookieSession` (tokens sealed
 * in the browser's cookies) or `ServerSession` (tokens in a server store, found by the app's user
 * or a session id). Nothing outside this module asks which.
 */
export interface RequestSession {
  load(): Promise<TokenRecord>;
  /**
   * Whether new tokens would reach their store: false for cookie-store tokens once the response
   * head is sent (a refresh then would spend a refresh token whose successor cannot be kept).
   */
  canPersist(): boolean;
  /** Where a server store keeps this session's tokens of `provider` (for locks and fresh reads); undefined for the cookie store. */
  sharedKey(provider: string): Promise<string | undefined>;
  /** One provider's tokens as a server store holds them right now (other instances may have written). */
  readShared(provider: string): Promise<StoredTokens | undefined>;
  /**
   * As `readShared`, with the sealed value they were read from (what a fenced write or removal
   * compares with); `tokens` is undefined for a value that no longer unseals (expired, foreign).
   */
  readSharedEntry(provider: string): Promise<SharedEntry | undefined>;
  /** The store's lock for refreshing `provider`'s tokens of this session, when it has one. */
  refreshLock(provider: string): Promise<RefreshLock | undefined>;
  /** Stores tokens. `persisted`: a server store already holds them (written under the refresh lock). */
  put(provider: string, tokens: StoredTokens, options?: { persisted?: boolean }): Promise<void>;
  remove(provider: string): Promise<void>;
  /**
   * Ends a grant the provider refused (`invalid_grant`): `saved` as this request read them,
   * `tokens` their successor in this process (the ones refused).
   */
  endRefused(provider: string, saved: StoredTokens, tokens: StoredTokens): Promise<void>;
  /**
   * Writes refreshed tokens under a key, for the refresh lock's holder: only over `expected` (the
   * sealed value it read under the lock) when the store can compare (`putIf`), so tokens written
   * meanwhile by anyone else are never overwritten (then nothing is written: the store keeps theirs).
   * A write that fails is remembered, so that writing the same tokens again later (a request that
   * holds them) stays fenced on the same value.
   */
  writeShared(key: string, provider: string, tokens: StoredTokens, expected?: string): Promise<void>;
  /** Before a login's tokens are stored: a new session, never one a visitor could have planted. */
  renew(provider: string): Promise<void>;
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

/** The one place that looks at which store is configured. */
export function openSession(
  config: ResolvedConfig,
  sealer: Sealer,
  source: SessionSource,
  coordinator: RefreshCoordinator,
): RequestSession {
  const { store } = config;
  return store.kind === 'cookie'
    ? new CookieSession(config, store, sealer, source, coordinator)
    : new ServerSession(config, store, sealer, source);
}

/** What both kinds share: a record loaded once per request, writes applied in order, the provider cookies. */
abstract class BaseSession {
  protected readonly config: ResolvedConfig;
  protected readonly sealer: Sealer;
  protected readonly source: SessionSource;
  #loaded: Promise<TokenRecord> | undefined;
  // Writes of one request are applied in order, each on the result of the previous one.
  #writes: Promise<unknown> = Promise.resolve();

  constructor(config: ResolvedConfig, sealer: Sealer, source: SessionSource) {
    this.config = config;
    this.sealer = sealer;
    this.source = source;
  }

  load(): Promise<TokenRecord> {
    this.#loaded ??= this.read();
    return this.#loaded;
  }

  /** Stores tokens. `persisted`: a server store already holds them (written under the refresh lock). */
  put(provider: string, tokens: StoredTokens, options: { persisted?: boolean } = {}): Promise<void> {
    return this.#write(provider, tokens, options.persisted === true);
  }

  remove(provider: string): Promise<void> {
    return this.#write(provider, undefined, false);
  }

  protected abstract read(): Promise<TokenRecord>;

  /** Writes (or removes) one provider's tokens where this kind keeps them. */
  protected abstract store(provider: string, tokens: StoredTokens | undefined, persisted: boolean): Promise<void>;

  /** Runs `work` after this request's earlier writes; `work` answers the record as it is after it. */
  protected queue(work: () => Promise<TokenRecord | undefined>): Promise<void> {
    const next = this.#writes.then(async () => {
      const updated = await work();
      if (updated) this.#loaded = Promise.resolve(updated);
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  #write(provider: string, tokens: StoredTokens | undefined, persisted: boolean): Promise<void> {
    return this.queue(async () => {
      const current = await this.load();
      const { [provider]: _previous, ...others } = current;
      await this.store(provider, tokens, persisted);
      return tokens ? { ...others, [provider]: tokens } : others;
    });
  }

  protected get cookieAttributes(): CookieAttributes {
    return { path: '/', maxAge: this.config.sessionMaxAgeSeconds, secure: this.config.secureCookies };
  }

  /** The cookie a provider's session lives in: `oauth_session-google` (chunked when large). */
  protected cookieName(provider: string): string {
    return `${this.config.cookieName}-${provider}`;
  }

  protected async readCookie(provider: string): Promise<{ record: CookieRecord; sealed: string } | undefined> {
    const { cookies } = this.source;
    const sealed = cookies ? readChunked(cookies, this.cookieName(provider)) : undefined;
    if (sealed === undefined) return undefined;
    const record = this.sealer.unseal<CookieRecord>(sealed, { cache: true });
    return record && { record, sealed };
  }

  /** Seals a provider's session cookie's value (undefined: the cookie goes). */
  protected async sealCookie(record: CookieRecord | undefined): Promise<string | undefined> {
    // Stryker disable next-line BooleanLiteral: the unseal cache saves work, never changes what is read.
    return record && this.sealer.seal(record, this.config.sessionMaxAgeSeconds, { cache: true });
  }

  /** Writes (or with `undefined`, deletes) a provider's session cookie. */
  protected writeCookie(provider: string, sealed: string | undefined): void {
    const { cookies } = this.source;
    if (!cookies) return;
    if (!writeChunked(cookies, this.cookieName(provider), sealed, this.cookieAttributes)) {
      this.config.hooks.onError(
        new Error('The session changed after the response head was sent; the new session cookie could not be set.'),
      );
    }
  }
}

/** Tokens sealed in the browser's cookies, one provider's in its own cookie (chunked when large). */
class CookieSession extends BaseSession implements RequestSession {
  readonly #store: CookieTokenStore;
  readonly #coordinator: RefreshCoordinator;
  // How many cookies each provider's tokens take (the total is bounded by maxChunks).
  readonly #chunks = new Map<string, number>();

  constructor(
    config: ResolvedConfig,
    store: CookieTokenStore,
    sealer: Sealer,
    source: SessionSource,
    coordinator: RefreshCoordinator,
  ) {
    super(config, sealer, source);
    this.#store = store;
    this.#coordinator = coordinator;
  }

  canPersist(): boolean {
    const { cookies } = this.source;
    return cookies === undefined || cookies.writable();
  }

  // Stryker disable BlockStatement: an empty body returns undefined too; a cookie session shares nothing.
  async sharedKey(): Promise<undefined> {
    return undefined;
  }

  async readShared(): Promise<undefined> {
    return undefined;
  }

  async readSharedEntry(): Promise<undefined> {
    return undefined;
  }

  async refreshLock(): Promise<undefined> {
    return undefined;
  }
  // Stryker restore BlockStatement

  /**
   * A cookie-store session cannot learn of a sibling instance's refresh: the browser may be
   * receiving that instance's new cookie right now, so this response must not delete it. The grant
   * ends in this process; its next request here clears the cookie.
   */
  async endRefused(provider: string, saved: StoredTokens, tokens: StoredTokens): Promise<void> {
    this.#coordinator.end(provider, saved, tokens);
  }

  async writeShared(): Promise<void> {}

  /** Nothing to renew: the tokens travel in a cookie nobody else can read. */
  async renew(): Promise<void> {}

  protected async read(): Promise<TokenRecord> {
    const record: Record<string, StoredTokens> = {};
    for (const provider of Object.keys(this.config.providers)) {
      const cookie = await this.readCookie(provider);
      if (!cookie) continue;
      this.#chunks.set(provider, chunkCount(cookie.sealed)); // an unreadable cookie is overwritten by the next write
      if ('tokens' in cookie.record) record[provider] = cookie.record.tokens;
    }
    return record;
  }

  protected async store(provider: string, tokens: StoredTokens | undefined): Promise<void> {
    const sealed = await this.sealCookie(tokens && { tokens });
    if (sealed) {
      // The budget is for all providers together: it is what the Cookie header of every request carries.
      let others = 0;
      for (const [name, count] of this.#chunks) if (name !== provider) others += count;
      if (others + chunkCount(sealed) > this.#store.maxChunks) {
        throw new OAuthError(
          'session_too_large',
          `These tokens need more than ${this.#store.maxChunks} cookies. Keep tokens server-side instead (memoryStore() or redisStore()).`,
        );
      }
    }
    if (sealed === undefined) this.#chunks.delete(provider);
    else this.#chunks.set(provider, chunkCount(sealed));
    this.writeCookie(provider, sealed);
  }
}

/**
 * Tokens sealed at rest in a server store, under the app's user (`user:<id>`) when the app names
 * one, else under a random session id sealed in the provider's own cookie.
 */
class ServerSession extends BaseSession implements RequestSession {
  readonly #store: ServerTokenStore;
  // The app's user key, or else each provider's session id (from its cookie).
  #subjectKey: string | undefined;
  readonly #sids = new Map<string, string>();

  constructor(config: ResolvedConfig, store: ServerTokenStore, sealer: Sealer, source: SessionSource) {
    super(config, sealer, source);
    this.#store = store;
  }

  canPersist(): boolean {
    return true;
  }

  async sharedKey(provider: string): Promise<string | undefined> {
    await this.load();
    return this.#keyOf(provider);
  }

  async readShared(provider: string): Promise<StoredTokens | undefined> {
    return (await this.readSharedEntry(provider))?.tokens;
  }

  async readSharedEntry(provider: string): Promise<SharedEntry | undefined> {
    const key = await this.sharedKey(provider);
    if (key === undefined) return undefined;
    return this.#readEntry(key, provider);
  }

  async refreshLock(provider: string): Promise<RefreshLock | undefined> {
    const store = this.#store;
    const key = await this.sharedKey(provider);
    if (!store.lock || key === undefined) return undefined;
    return { key, lock: store.lock.bind(store) };
  }

  /**
   * Removes one provider's tokens after the provider refused them, but only if the store still
   * holds these (`saved` as read, `tokens` their successor in this process) or a value that no
   * longer unseals; tokens written since (a sibling's refresh, a new login) are kept, and become
   * this session's. Atomic where the store has `removeIf`.
   */
  endRefused(provider: string, ...refused: readonly StoredTokens[]): Promise<void> {
    const store = this.#store;
    return this.queue(async () => {
      const { [provider]: _refused, ...others } = await this.load();
      const key = this.#keyOf(provider);
      const entry = key === undefined ? undefined : await this.#readEntry(key, provider);
      const current = entry?.tokens;
      const newer = current !== undefined && !refused.some((tokens) => sameTokens(tokens, current));
      if (key !== undefined && entry && !newer) {
        const removeIf = store.removeIf?.bind(store);
        // Removed, or not: a value written between this read and the removal is newer still.
        if (removeIf) await guard(() => removeIf(key, provider, entry.sealed));
        else await guard(() => store.remove(key, provider));
      }
      return newer ? { ...others, [provider]: current } : others;
    });
  }

  async writeShared(key: string, provider: string, tokens: StoredTokens, expected?: string): Promise<void> {
    if (expected !== undefined) unwritten.set(tokens, { key, expected });
    await this.#putSealed(key, provider, tokens);
    unwritten.delete(tokens);
  }

  /**
   * A cookie-keyed session of that provider gets a new id, so a session id planted in the browser
   * beforehand (session fixation) never sees the new tokens; what the old id held is removed.
   */
  renew(provider: string): Promise<void> {
    const store = this.#store;
    return this.queue(async () => {
      await this.load();
      const previous = this.#sids.get(provider);
      // Stryker disable next-line ConditionalExpression: a session keyed by user has no session ids; this says why it stops.
      if (previous === undefined || this.#subjectKey !== undefined) return undefined;
      this.#sids.delete(provider);
      await guard(() => store.remove(previous, provider));
      return undefined;
    });
  }

  #keyOf(provider: string): string | undefined {
    return this.#subjectKey ?? this.#sids.get(provider);
  }

  protected async read(): Promise<TokenRecord> {
    const store = this.#store;
    const providers = Object.keys(this.config.providers);
    const subject = await (this.source.subject?.() ?? Promise.resolve(undefined));
    if (subject !== undefined) {
      this.#subjectKey = `user:${subject}`;
      return this.#unsealAll(await guard(() => store.get(`user:${subject}`, providers)));
    }
    const sealed: Record<string, string> = {};
    for (const provider of providers) {
      const cookie = await this.readCookie(provider);
      if (!cookie || !('sid' in cookie.record)) continue;
      const { sid } = cookie.record;
      this.#sids.set(provider, sid);
      const found = (await guard(() => store.get(sid, [provider])))[provider];
      if (found !== undefined) sealed[provider] = found;
    }
    return this.#unsealAll(sealed);
  }

  protected async store(provider: string, tokens: StoredTokens | undefined, persisted: boolean): Promise<void> {
    if (persisted) return this.#renewSidCookie(provider);
    const store = this.#store;
    let key = this.#keyOf(provider);
    if (!tokens) {
      // Stryker disable next-line ConditionalExpression: a session without an id has nothing stored under any key; removing an unknown key removes nothing
      if (key !== undefined) await guard(() => store.remove(key as string, provider));
      // Stryker disable next-line ConditionalExpression: deleting a cookie the request does not carry writes nothing
      if (this.#sids.delete(provider)) this.writeCookie(provider, undefined);
      return;
    }
    if (key === undefined) {
      key = randomBytes(32).toString('base64url');
      this.#sids.set(provider, key);
    }
    await this.#putSealed(key, provider, tokens);
    await this.#renewSidCookie(provider);
  }

  async #readEntry(key: string, provider: string): Promise<SharedEntry | undefined> {
    const sealed = (await guard(() => this.#store.get(key, [provider])))[provider];
    if (sealed === undefined) return undefined;
    // Stryker disable next-line BooleanLiteral: the unseal cache saves work, never changes what is read.
    return { sealed, tokens: this.sealer.unseal<StoredTokens>(sealed, { cache: true }) };
  }

  async #unsealAll(sealed: Readonly<Record<string, string>>): Promise<TokenRecord> {
    const record: Record<string, StoredTokens> = {};
    for (const [provider, value] of Object.entries(sealed)) {
      const tokens = this.sealer.unseal<StoredTokens>(value, { cache: true });
      if (tokens) record[provider] = tokens;
    }
    return record;
  }

  /** A provider's session id cookie, written (again) on every write: a session in use never reaches its Max-Age. */
  async #renewSidCookie(provider: string): Promise<void> {
    const sid = this.#sids.get(provider);
    // Stryker disable next-line ConditionalExpression: a session keyed by app user holds no session id (its read returns before any cookie)
    if (sid !== undefined && this.#subjectKey === undefined) this.writeCookie(provider, await this.sealCookie({ sid }));
  }

  /** Writes sealed tokens; fenced (see `writeShared`) when a fenced write of these very tokens is pending. */
  async #putSealed(key: string, provider: string, tokens: StoredTokens): Promise<void> {
    const store = this.#store;
    // Every key expires: with the refresh token when the provider says when, else with the session
    // cookie that finds it (renewed on every write), or after the longest lifetime for a user's key.
    const unknown = key === this.#sids.get(provider) ? this.config.sessionMaxAgeSeconds : UNKNOWN_LIFETIME_SECONDS;
    const ttl = Math.min(lifetime(tokens) ?? unknown, UNKNOWN_LIFETIME_SECONDS);
    // Stryker disable next-line BooleanLiteral: the unseal cache saves work, never changes what is read.
    const sealed = this.sealer.seal(tokens, ttl, { cache: true });
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
