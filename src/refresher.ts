/**
 * Refresh coordination: one refresh per refresh token in this process (single flight), one per
 * session across processes when the store can lock (the cross-process lock, its lease, and the
 * holder's fenced write), and which refreshed tokens a server store already holds.
 */
import type { ResolvedConfig } from './config.js';
import { isOAuthError, OAuthError } from './errors.js';
import type { ProviderSeam } from './provider-seam.js';
import { guard, type RefreshLock, type RequestSession } from './request-session.js';
import type { StoreLock, StoredTokens } from './stores/types.js';
import { type RefreshCoordinator, toStored } from './tokens.js';

// A refresh lock taken from a store that cannot extend it outlives the slowest refresh under it:
// the provider's timeout (10 s by default) plus a few store commands (2 s each at most) and the
// retried write of the result. A store that can extend it holds it as a short lease instead,
// renewed while the refresh runs (see `#lockedRefresh`).
const REFRESH_LOCK_MARGIN_MS = 12_000;
const STORE_WRITE_ATTEMPTS = 3;

export class Refresher {
  // Refreshed tokens a server store already holds, and under which key (written under the lock).
  readonly #persistedUnder = new WeakMap<StoredTokens, string>();
  readonly #config: ResolvedConfig;
  readonly #providers: ProviderSeam;
  readonly #coordinator: RefreshCoordinator;

  constructor(config: ResolvedConfig, providers: ProviderSeam, coordinator: RefreshCoordinator) {
    this.#config = config;
    this.#providers = providers;
    this.#coordinator = coordinator;
  }

  /** The key a server store already holds `tokens` under (read back, or written under the lock). */
  persistedKey(tokens: StoredTokens): string | undefined {
    return this.#persistedUnder.get(tokens);
  }

  /** Refreshes once per refresh token in this process, and once per session across processes when the store can lock. */
  async refresh(name: string, tokens: StoredTokens, refreshToken: string, session: RequestSession): Promise<StoredTokens> {
    return this.#coordinator.refresh(name, refreshToken, async () => {
      const locking = await session.refreshLock(name);
      if (locking) {
        await this.#providers.connect(name); // discovery before the lock: the lock's lifetime is for the refresh alone
        return this.#lockedRefresh(name, tokens, refreshToken, session, locking);
      }
      return this.#providerRefresh(name, tokens, refreshToken, session);
    });
  }

  async #providerRefresh(name: string, tokens: StoredTokens, refreshToken: string, session: RequestSession) {
    let fresh: StoredTokens;
    try {
      fresh = toStored(await this.#providers.refresh(name, tokens, refreshToken), tokens);
    } catch (err) {
      if (!isOAuthError(err) || err.error !== 'invalid_grant') throw err;
      // A sibling (another instance) may have spent this refresh token first: its result stands.
      const stored = await session.readShared(name);
      if (stored && replaced(stored, tokens)) return this.#fromStore(stored, await session.sharedKey(name));
      // Else the provider may mint new tokens for the grant (Cal.com's force-refresh, when allowed).
      const recovered = await this.#providers.recover(name, tokens, refreshToken).catch((recoveryError: unknown) => {
        this.#config.hooks.onError(recoveryError);
        return undefined;
      });
      if (!recovered) throw err;
      fresh = toStored(recovered, tokens);
    }
    this.#config.hooks.onRefresh({ provider: name });
    return fresh;
  }

  /**
   * Across processes: the lock's winner refreshes and writes; the others wait (bounded) and read its
   * result. A lock nobody renews outlives the slowest refresh under it (the provider's timeout,
   * store commands, the retried write). One its holder can renew (stores with `extend`) is cut down
   * at once to a lease of half the provider's timeout (1 s at least) and renewed every third of it
   * while the holder works: a refresh slower than the lease keeps its lock, and a crashed holder's
   * lock frees after one lease. The holder's write is fenced on the value it read under the lock
   * (see `#writeRefreshed`).
   */
  async #lockedRefresh(
    name: string,
    tokens: StoredTokens,
    refreshToken: string,
    session: RequestSession,
    { key, lock }: RefreshLock,
  ): Promise<StoredTokens> {
    const timeoutMs = this.#providers.definition(name).timeoutSeconds * 1000;
    const lockTtl = timeoutMs + REFRESH_LOCK_MARGIN_MS;
    const lease = Math.max(1000, timeoutMs / 2);
    // Waiters outlast the slowest live holder, and a crashed one: its lock expires, and one of them takes over.
    const deadline = Date.now() + lockTtl + 5000;
    const ended = () =>
      new OAuthError(
        'provider_error',
        // Stryker disable next-line StringLiteral: never shown: RequestTokens answers reauth_required, with its own message
        'The login ended while waiting for its refresh.',
        { provider: name, error: 'invalid_grant' },
      );
    for (let attempt = 0; ; attempt++) {
      const held = await guard(() => lock(`refresh:${name}:${key}`, lockTtl));
      if (held) {
        const stopRenewing = renewWhileWorking(held, lease, deadline);
        let storeAnswers = false;
        try {
          const read = await session.readSharedEntry(name);
          storeAnswers = true;
          const stored = read?.tokens;
          if (!read || !stored) throw ended(); // logged out meanwhile (another instance): never bring it back
          if (replaced(stored, tokens)) return this.#fromStore(stored, key);
          // Never `stored` itself: the provider's new tokens, or a sibling's found after an
          // invalid_grant (which replaced these; the fence on `read.sealed` leaves them as they are).
          const fresh = await this.#providerRefresh(name, tokens, refreshToken, session);
          storeAnswers = await this.#writeRefreshed(session, key, name, fresh, read.sealed);
          return fresh;
        } finally {
          stopRenewing();
          // Not waited for once the store failed: the lock expires by itself, and the request answers now.
          const released = held.release().catch((err: unknown) => this.#config.hooks.onError(err));
          if (storeAnswers) await released;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, 10 * 2 ** attempt) * (0.5 + Math.random())));
      const stored = await session.readShared(name);
      if (!stored) throw ended();
      // Stryker disable next-line ConditionalExpression: without this early read a waiter takes the lock once the holder lets go, and finds the same tokens under it
      if (replaced(stored, tokens)) return this.#fromStore(stored, key);
      if (Date.now() > deadline) {
        throw new OAuthError('provider_unavailable', 'Another instance is still refreshing this token.', { provider: name });
      }
    }
  }

  /**
   * Tokens read back from a server store are already there: the request that uses them must not
   * write them again (a late write, outside the lock, could put back a refresh token spent since).
   */
  #fromStore(stored: StoredTokens, key: string | undefined): StoredTokens {
    if (key !== undefined) this.#persistedUnder.set(stored, key);
    return stored;
  }

  /**
   * The lock holder's write of the refreshed tokens, fenced on `expected` (the sealed value it read
   * under the lock) where the store can compare (`putIf`): what anyone wrote meanwhile is never
   * overwritten with these. That is a sibling that took over the lock once this holder lost it
   * (its renewals failed) and wrote first, or a logout, or a new login. The tokens are then still
   * handed to this request (the provider has spent the refresh token they replace) but not written:
   * the store keeps the newer value (or its absence, after a logout), which is what every instance,
   * this one included, reads from then on. When nothing was written meanwhile, the write goes ahead
   * even with the lock lost: these are the provider's newest tokens, and a sibling refreshing with
   * the spent refresh token finds them after its `invalid_grant`.
   *
   * Retried while failures are quick (the provider has spent the old refresh token, so a lost write
   * is a lost login), but not after a store that did not answer in time: each wait holds up the
   * request. If the store stays down, the tokens are still handed out (this process remembers them)
   * and written again by the request, fenced on the same value. Resolves whether the store answered.
   */
  async #writeRefreshed(
    session: RequestSession,
    key: string,
    name: string,
    fresh: StoredTokens,
    expected: string,
  ): Promise<boolean> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await session.writeShared(key, name, fresh, expected);
        this.#persistedUnder.set(fresh, key); // written, or superseded by newer: either way never written by the request
        return true;
      } catch (err) {
        if (attempt >= STORE_WRITE_ATTEMPTS || Date.now() - started >= 1000) {
          this.#config.hooks.onError(err);
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }
}

/** Whether `stored` came from a refresh of `tokens` (non-rotating providers keep the refresh token, not the access token). */
function replaced(stored: StoredTokens, tokens: StoredTokens): boolean {
  return stored.accessToken !== tokens.accessToken || stored.refreshToken !== tokens.refreshToken;
}

/**
 * Cuts a held lock down to `lease` at once, then renews it every third of that until the work
 * ends (the function returned), the lock is lost, or waiters would have given up at `deadline` (a
 * hung holder must not keep it forever). A failed renewal is tried again: the lease may still hold.
 */
function renewWhileWorking(held: StoreLock, lease: number, deadline: number): () => void {
  let renewal: NodeJS.Timeout | undefined;
  let working = true;
  const renew = (delayMs: number) => {
    renewal = setTimeout(async () => {
      const kept = await held.extend?.(lease).catch(() => true);
      if (working && kept === true && Date.now() < deadline) renew(lease / 3);
    }, delayMs);
    renewal.unref();
  };
  // Stryker disable next-line ConditionalExpression: without `extend`, a renewal calls nothing and stops
  if (held.extend) renew(0);
  return () => {
    working = false;
    clearTimeout(renewal);
  };
}
