import type { StoredTokens } from '../token-shape.js';

export type { StoredTokens };

/** All the tokens of one session (or one subject), by provider name. */
export type TokenRecord = Readonly<Record<string, Readonly<StoredTokens>>>;

/** Tokens sealed in the browser's own cookies: nothing to run, works across instances. */
export interface CookieTokenStore {
  readonly kind: 'cookie';
  /** Most cookies one session may use; more fails with `session_too_large`. */
  readonly maxChunks: number;
}

/** A lock held on one key; release it when done. */
export interface StoreLock {
  /** Frees the lock if this holder still owns it (a lock that expired and was taken since stays the new holder's). */
  release(): Promise<void>;
  /**
   * Optional: makes the lock expire `ttlMs` from now if this holder still owns it (atomically: a
   * lock that expired and was taken by another holder is left alone); resolves false once it is
   * lost. A refresh lock is taken for as long as the slowest refresh; one that can be extended is
   * cut down at once to a short lease (`ttlMs`: half the provider's timeout, 1 s at least) and
   * extended every third of it while its holder works, then no more. A refresh slower than the
   * lease keeps its lock, and a crashed holder's lock frees after one lease. Without it, a lock
   * lasts what it was taken for.
   */
  extend?(ttlMs: number): Promise<boolean>;
}

/**
 * Tokens kept server-side; the session cookie then holds only a random session id (or nothing,
 * when the app keys tokens by user). Values arrive sealed: a store never sees a token in clear.
 * One provider's tokens under one key is the unit of every write, so two requests that change
 * two providers of one session never overwrite each other.
 */
export interface ServerTokenStore {
  readonly kind: 'server';
  /** The sealed tokens stored under `key`, by provider, for the providers asked. */
  get(key: string, providers: readonly string[]): Promise<Readonly<Record<string, string>>>;
  /** Stores one provider's sealed tokens; `ttlSeconds`, when known, is how long they are worth keeping. */
  put(key: string, provider: string, sealed: string, ttlSeconds: number | undefined): Promise<void>;
  remove(key: string, provider: string): Promise<void>;
  /**
   * Optional: stores `sealed` only if the value stored is still `expected` (or is `sealed` already:
   * a retried write that had landed), atomically; resolves whether it did. The refresh lock's
   * holder writes refreshed tokens with it, over the value it read under the lock, so that what
   * anyone wrote meanwhile (a sibling that took over an expired lock, a logout, a new login) is
   * never overwritten with older tokens. Without it, the holder writes with `put`.
   */
  putIf?(key: string, provider: string, sealed: string, ttlSeconds: number | undefined, expected: string): Promise<boolean>;
  /**
   * Optional: removes only if the value stored is still `expected`, atomically; resolves whether it
   * did. Tokens the provider refused (`invalid_grant`) are removed with it, so that tokens written
   * since (a sibling's refresh, a new login) are kept. Without it, they are read, compared, then
   * removed with `remove`.
   */
  removeIf?(key: string, provider: string, expected: string): Promise<boolean>;
  /**
   * Optional cross-process lock (Redis): resolves to a held lock, or undefined when another holder
   * has it. It expires by itself `ttlMs` after it was taken or last extended, so a crashed holder
   * never blocks for long.
   */
  lock?(name: string, ttlMs: number): Promise<StoreLock | undefined>;
}

/** Where tokens are kept: `cookieStore()` (default), `memoryStore()`, or a server store such as Redis. */
export type TokenStore = CookieTokenStore | ServerTokenStore;
