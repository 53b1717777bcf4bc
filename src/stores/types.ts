/** One provider's tokens as this library keeps them. The refresh token never leaves the library. */
export interface StoredTokens {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresAt?: number | undefined;
  refreshToken?: string | undefined;
  scope?: string | undefined;
  idToken?: string | undefined;
  extras: Record<string, unknown>;
}

/** All the tokens of one session (or one subject), by provider name. */
export type TokenRecord = Readonly<Record<string, Readonly<StoredTokens>>>;

/** Tokens sealed in the browser's own cookies: nothing to run, works across instances. */
export interface CookieTokenStore {
  readonly kind: 'cookie';
}

/** A lock held on one key; release it when done. */
export interface StoreLock {
  release(): Promise<void>;
}

/**
 * Tokens kept server-side; the session cookie then holds only a random session id.
 * One provider's tokens under one key is the unit of every write, so two requests that change
 * two providers of one session never overwrite each other.
 */
export interface ServerTokenStore {
  readonly kind: 'server';
  get(key: string): Promise<TokenRecord | undefined>;
  put(key: string, provider: string, tokens: StoredTokens): Promise<void>;
  remove(key: string, provider: string): Promise<void>;
  /** Optional cross-process lock (Redis); in-process single flight is always on. */
  lock?(key: string, ttlMs: number): Promise<StoreLock | undefined>;
}

/** Where tokens are kept: `cookieStore()` (default), `memoryStore()`, or a server store such as Redis. */
export type TokenStore = CookieTokenStore | ServerTokenStore;
