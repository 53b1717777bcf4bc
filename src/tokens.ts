/**
 * Tokens as users see them, expiry, and the in-process refresh coordination: one refresh per
 * refresh token at a time (single flight), and the successor of a rotated refresh token kept for
 * a while, so a request still carrying the previous cookie gets the new tokens instead of
 * spending a refresh token the provider already rotated away.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { isOAuthError, OAuthError } from './errors.js';
import { deepFreeze, nowSeconds } from './session.js';
import type { StoredTokens } from './stores/types.js';

/**
 * A usable access token. The refresh token is deliberately absent: it never leaves the library.
 *
 * @example
 * ```ts
 * const { accessToken, tokenType } = await req.oauth.getToken('google');
 * await fetch(url, { headers: { authorization: `${tokenType} ${accessToken}` } });
 * ```
 */
export interface TokenSet {
  accessToken: string;
  /** `Bearer` for almost every provider. */
  tokenType: string;
  /** Epoch seconds; absent when the provider gave no lifetime. */
  expiresAt?: number | undefined;
  scope?: string | undefined;
  idToken?: string | undefined;
  /** The ID token's claims (validated at login or refresh), when there is one. */
  claims?: Record<string, unknown> | undefined;
  /** Provider fields such as Pipedrive's `api_domain`. */
  extras: Record<string, unknown>;
}

/**
 * Tokens the app obtained without a browser login (minted server-side, migrated from another
 * library), for `importTokens`: either fields as `getToken` gives them (plus the refresh token), or
 * the provider's own token answer, read as its token endpoint's answers are. `extras` are kept with
 * them (Cal.com's managed user id, for recovery).
 */
export type ImportedTokens =
  | {
      accessToken: string;
      tokenType?: string | undefined;
      /** Epoch seconds. */
      expiresAt?: number | undefined;
      refreshToken?: string | undefined;
      /** Epoch seconds. */
      refreshExpiresAt?: number | undefined;
      scope?: string | undefined;
      extras?: Record<string, unknown> | undefined;
    }
  | { answer: unknown; extras?: Record<string, unknown> | undefined };

/** Imported fields, checked: a mistake in them is the app's, told at once rather than at the first refresh. */
export function importedTokens(input: Extract<ImportedTokens, { accessToken: string }>): StoredTokens {
  const problem = (field: string, why: string) =>
    new OAuthError('config_invalid', `Imported tokens: ${field} ${why}.`, { field: `tokens.${field}` });
  const optionalText = ['tokenType', 'refreshToken', 'scope'] as const;
  if (typeof input.accessToken !== 'string' || input.accessToken === '')
    throw problem('accessToken', 'must be a non-empty string');
  for (const field of optionalText) {
    const value = input[field];
    if (value !== undefined && (typeof value !== 'string' || value === '')) throw problem(field, 'must be a non-empty string');
  }
  for (const field of ['expiresAt', 'refreshExpiresAt'] as const) {
    const value = input[field];
    // Number.isInteger is false for anything that is not a number.
    if (value !== undefined && (!Number.isInteger(value) || value < 1e9 || value > 1e11)) {
      throw problem(field, 'must be epoch seconds');
    }
  }
  return {
    accessToken: input.accessToken,
    tokenType: input.tokenType ?? 'Bearer',
    expiresAt: input.expiresAt,
    refreshToken: input.refreshToken,
    refreshExpiresAt: input.refreshExpiresAt,
    scope: input.scope,
    extras: {},
  };
}

/**
 * What to keep of a token response. A response without a refresh token keeps the previous one.
 * A refresh (`previous` given) records when its tokens arrived: see `isDue`.
 */
export function toStored(tokens: StoredTokens, previous?: StoredTokens): StoredTokens {
  return {
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    expiresAt: tokens.expiresAt,
    // Stryker disable next-line ConditionalExpression: without an expiry nothing is due, whenever obtained.
    obtainedAt: previous === undefined || tokens.expiresAt === undefined ? undefined : nowSeconds(),
    refreshToken: tokens.refreshToken ?? previous?.refreshToken,
    refreshExpiresAt: tokens.refreshToken ? tokens.refreshExpiresAt : (tokens.refreshExpiresAt ?? previous?.refreshExpiresAt),
    scope: tokens.scope ?? previous?.scope,
    idToken: tokens.idToken ?? previous?.idToken,
    extras: { ...previous?.extras, ...tokens.extras },
  };
}

// One frozen view per stored token set, built at its first use: stored tokens never change (a
// refresh makes new ones), so every request reading the same ones (the unseal cache hands out one
// object per cookie value) shares it, and an ID token's claims are decoded once, not per call.
const views = new WeakMap<StoredTokens, TokenSet>();

/** The app's view of stored tokens (`getToken`'s answer): frozen, shared, without the refresh token. */
export function toTokenSet(tokens: StoredTokens): TokenSet {
  let view = views.get(tokens);
  if (!view) {
    view = deepFreeze({
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      expiresAt: tokens.expiresAt,
      scope: tokens.scope,
      idToken: tokens.idToken,
      claims: claimsOf(tokens),
      extras: { ...tokens.extras },
    });
    views.set(tokens, view);
  }
  return view;
}

/**
 * The claims of the tokens' ID token. A provider keeps an ID token only once it validated it
 * (openid-client, at login or refresh), so here it is only decoded.
 */
export function claimsOf(tokens: StoredTokens): Record<string, unknown> | undefined {
  if (tokens.idToken === undefined) return undefined;
  const payload = tokens.idToken.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * Whether to refresh now: `skewSeconds` before expiry. A refreshed token that lives no longer than
 * twice the skew waits half its life instead: otherwise a provider whose tokens live shorter than
 * the skew would be asked for a new one at every call, each due from birth. (The first token of a
 * login has no `obtainedAt`: at worst it is refreshed once, at its first use.)
 */
export function isDue(tokens: StoredTokens, skewSeconds: number): boolean {
  if (tokens.expiresAt === undefined) return false;
  const lifetime = tokens.obtainedAt === undefined ? undefined : tokens.expiresAt - tokens.obtainedAt;
  const skew = lifetime === undefined ? skewSeconds : Math.min(skewSeconds, lifetime / 2);
  return tokens.expiresAt - skew <= nowSeconds();
}

export function isExpired(tokens: StoredTokens): boolean {
  return tokens.expiresAt !== undefined && tokens.expiresAt <= nowSeconds();
}

// How long the successor of a rotated refresh token is remembered: long enough for slow
// requests and other tabs carrying the previous cookie to arrive.
const SUCCESSOR_TTL_MS = 10 * 60 * 1000;
// Bounded by memory rather than by count, so that a busy process keeps ten minutes of refreshes:
// 64 MB holds some 30,000 successors of 2 KB (ID tokens included), 100 refreshes a second of
// small ones. Past that the oldest go first, and a request with a cookie that old refreshes again.
const SUCCESSOR_MEMORY_BYTES = 64 * 1024 * 1024;

// After a refresh failed with provider trouble, the grant waits before the next attempt: 1 s,
// doubling with each failure in a row, 60 s at most. Requests meanwhile get the still-valid access
// token, or 503, without calling a provider that is already failing.
const COOLDOWN_FIRST_MS = 1000;
const COOLDOWN_LONGEST_MS = 60_000;

/** Errors thrown while a grant cools down: the failure they stand for was already reported. */
const cooldownErrors = new WeakSet<Error>();

/** Whether an error is a refresh refused during a cooldown (no provider was called). */
export function isCooldown(err: unknown): boolean {
  return err instanceof Error && cooldownErrors.has(err);
}

/**
 * Single-flight refresh keyed by (provider, refresh token), the successors of spent refresh
 * tokens, and the cooldown of grants whose provider just failed.
 */
export class RefreshCoordinator {
  readonly #inflight = new Map<string, Promise<StoredTokens>>();
  readonly #successors = new LRUCache<string, StoredTokens>({
    maxSize: SUCCESSOR_MEMORY_BYTES,
    // The tokens' JSON length: what they take, near enough, for a budget in megabytes.
    sizeCalculation: (tokens) => JSON.stringify(tokens).length,
    ttl: SUCCESSOR_TTL_MS,
  });

  // Grants ended by a logout in this process: a request still carrying their tokens (a stale
  // cookie) must not bring them back.
  readonly #ended = new LRUCache<string, true>({ max: 100_000, ttl: SUCCESSOR_TTL_MS });

  readonly #cooldowns = new LRUCache<string, { until: number; failures: number }>({ max: 100_000, ttl: 2 * COOLDOWN_LONGEST_MS });

  /** The newest tokens this process knows for the grant these tokens belong to; undefined once logged out. */
  latest(provider: string, tokens: StoredTokens): StoredTokens | undefined {
    let current = tokens;
    // Stryker disable next-line UpdateOperator,EqualityOperator: a bound on a cycle no refresh chain makes.
    for (let hops = 0; hops < 100; hops++) {
      const grant = grantKey(provider, current);
      if (this.#ended.has(grant)) return undefined;
      const next = current.refreshToken ? this.#successors.get(grant) : undefined;
      // Stryker disable next-line ConditionalExpression: a token its own successor stays itself, hop or not.
      if (!next || next === current) break;
      current = next;
    }
    return current;
  }

  /** Newly issued tokens are never "ended", even if a provider hands out the same ones again. */
  revive(provider: string, tokens: StoredTokens): void {
    this.#ended.delete(grantKey(provider, tokens));
  }

  /** Marks a grant as ended (logout), with every refresh token of its chain this process saw. */
  end(provider: string, original: StoredTokens, latest: StoredTokens): void {
    for (const tokens of [original, latest]) this.#ended.set(grantKey(provider, tokens), true);
  }

  /**
   * Refreshes once for every caller holding the same refresh token; while the grant cools down
   * after provider trouble, rejects with `provider_unavailable` without running.
   */
  refresh(provider: string, refreshToken: string, run: () => Promise<StoredTokens>): Promise<StoredTokens> {
    const k = key(provider, refreshToken);
    const running = this.#inflight.get(k);
    if (running) return running;
    const cooling = this.#cooldowns.get(k);
    // Stryker disable next-line EqualityOperator: the very millisecond the cooldown ends, either answer is right.
    if (cooling && cooling.until > Date.now()) {
      const error = new OAuthError('provider_unavailable', 'The provider failed a moment ago; the refresh is retried shortly.', {
        provider,
      });
      cooldownErrors.add(error);
      return Promise.reject(error);
    }
    const flight = run()
      .then(
        (fresh) => {
          this.#successors.set(k, fresh);
          this.#cooldowns.delete(k);
          return fresh;
        },
        (err: unknown) => {
          if (isProviderTrouble(err)) {
            const failures = (cooling?.failures ?? 0) + 1;
            const wait = Math.min(COOLDOWN_LONGEST_MS, COOLDOWN_FIRST_MS * 2 ** (failures - 1));
            this.#cooldowns.set(k, { failures, until: Date.now() + wait });
          }
          throw err;
        },
      )
      .finally(() => this.#inflight.delete(k));
    this.#inflight.set(k, flight);
    return flight;
  }
}

/** The provider failed or answered nonsense (not a refusal of the grant, not our store). */
function isProviderTrouble(err: unknown): boolean {
  return isOAuthError(err) && (err.code === 'provider_unavailable' || err.code === 'invalid_response');
}

// Keyed by a hash: a token itself never becomes a map key that could show in a heap dump summary or log.
function key(provider: string, token: string): string {
  return `${provider}\u0000${createHash('sha256').update(token).digest('base64url')}`;
}

// A grant's key (its refresh token, else its access token, hashed), once per tokens object (a tokens
// object is only ever one provider's): `latest` asks on every getToken, and the unseal cache hands
// every request carrying the same cookie value the same object.
const grantKeys = new WeakMap<StoredTokens, string>();

function grantKey(provider: string, tokens: StoredTokens): string {
  let known = grantKeys.get(tokens);
  // Stryker disable next-line ConditionalExpression: always recomputing gives the same hash; the cache only saves time.
  if (known === undefined) {
    known = key(provider, tokens.refreshToken ?? tokens.accessToken);
    grantKeys.set(tokens, known);
  }
  return known;
}
