/** One provider's tokens as this library keeps them. The refresh token never leaves the library. */
export interface StoredTokens {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresAt?: number | undefined;
  refreshToken?: string | undefined;
  /** Epoch seconds, when the provider says when the refresh token expires. */
  refreshExpiresAt?: number | undefined;
  scope?: string | undefined;
  idToken?: string | undefined;
  extras: Record<string, unknown>;
}

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
  release(): Promise<void>;
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
   * Optional cross-process lock (Redis): resolves to a held lock, or undefined when another holder
   * has it. It expires by itself after `ttlMs`, so a crashed holder never blocks for long.
   */
  lock?(name: string, ttlMs: number): Promise<StoreLock | undefined>;
}

/** Where tokens are kept: `cookieStore()` (default), `memoryStore()`, or a server store such as Redis. */
export type TokenStore = CookieTokenStore | ServerTokenStore;
