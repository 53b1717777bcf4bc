/**
 * Logins in flight: each one's `state`, PKCE verifier, nonce and `returnTo`, sealed in a cookie of
 * its own (one of a few slots), read back once by the callback and then spent.
 */
import { LRUCache } from 'lru-cache';
import type { ResolvedConfig } from './config.js';
import { OAuthError } from './errors.js';
import type { ProviderSeam } from './provider-seam.js';
import type { LoginChecks } from './providers/types.js';
import type { RequestCookies, Sealer } from './session.js';

/** The login transaction, sealed in its own cookie, one per `state`. */
export interface Transaction extends LoginChecks {
  provider: string;
  returnTo: string;
  /** Epoch ms: picks the newest login when a provider does not echo `state`. */
  createdAt: number;
}

const TRANSACTION_TTL_SECONDS = 600;
const TRANSACTION_COOKIE = 'oauth_tx.';
const STATELESS_WINDOW_MS = 2 * 60 * 1000;
// Logins of one provider in flight in one browser: each costs ~600 bytes of Cookie header, and
// Node refuses a header over 16 KB, so they must not pile up. Each login takes one of this many
// cookie names (slots): even logins started all at once, which cannot see each other's cookies,
// leave no more cookies than that (the later of two in one slot wins).
const LOGIN_SLOTS = 5;
const SLOT_NAMES: readonly string[] = Array.from({ length: LOGIN_SLOTS }, (_, slot) => String(slot));
// randomState() gives 43 base64url characters; anything else in a callback is not ours.
const STATE_FORMAT = /^[A-Za-z0-9_-]{16,128}$/;

interface Pending {
  cookieName: string;
  transaction: Transaction | undefined;
}

export class LoginTransactions {
  // States already used in this process: a replayed callback is refused even with its cookie.
  readonly #spentStates = new LRUCache<string, true>({ max: 10_000, ttl: TRANSACTION_TTL_SECONDS * 1000 });
  readonly #config: ResolvedConfig;
  readonly #sealer: Sealer;
  readonly #providers: ProviderSeam;
  // __Secure-: over https, a cookie no plain-http page (or network attacker) can set.
  readonly #prefix: string;

  constructor(config: ResolvedConfig, sealer: Sealer, providers: ProviderSeam) {
    this.#config = config;
    this.#sealer = sealer;
    this.#providers = providers;
    this.#prefix = (config.secureCookies ? '__Secure-' : '') + TRANSACTION_COOKIE;
  }

  /** Seals a new login of `name` into a free slot (or the oldest login's). `mountPath`: where the routes are served. */
  async open(name: string, checks: LoginChecks, returnTo: string, cookies: RequestCookies, mountPath: string): Promise<void> {
    const transaction: Transaction = { provider: name, ...checks, returnTo, createdAt: Date.now() };
    const sealed = this.#sealer.seal(transaction, TRANSACTION_TTL_SECONDS, { cache: false });
    cookies.set(await this.#freeSlot(cookies), sealed, this.#attributes(name, mountPath));
  }

  /**
   * A code with no `state` to a browser with no login of this provider in flight: a flow started at
   * the provider (an install from its marketplace), bound to nothing in this browser.
   */
  startedAtProvider(query: URLSearchParams, cookies: RequestCookies): boolean {
    if (query.has('state') || query.has('error') || !query.has('code')) return false;
    return !cookies.names().some((n) => n.startsWith(this.#prefix));
  }

  /** The login this callback answers, spent: its cookie goes, and its `state` is refused from now on. */
  async take(name: string, query: URLSearchParams, cookies: RequestCookies, mountPath: string): Promise<Transaction> {
    const mismatch = () =>
      new OAuthError('state_mismatch', 'This login is unknown, expired or already used. Please start again.', { provider: name });
    const states = query.getAll('state');
    const state = states[0];
    let found: { cookieName: string; transaction: Transaction } | undefined;
    if (states.length === 0 && this.#providers.definition(name).withoutState === 'newest-login')
      found = await this.#newest(name, cookies);
    else if (states.length === 1 && state !== undefined && STATE_FORMAT.test(state)) {
      found = (await this.#pending(cookies)).find(
        (pending): pending is { cookieName: string; transaction: Transaction } => pending.transaction?.state === state,
      );
    }
    if (!found) throw mismatch();
    // Single use: the transaction cookie goes whatever happens next.
    cookies.set(found.cookieName, undefined, this.#attributes(name, mountPath));
    const { transaction } = found;
    if (transaction.provider !== name) throw mismatch();
    if (this.#spentStates.has(transaction.state)) throw mismatch();
    this.#spentStates.set(transaction.state, true);
    return transaction;
  }

  #cookieName(slot: string): string {
    return this.#prefix + slot;
  }

  #attributes(name: string, mountPath: string) {
    // Scoped to this provider's routes: the callback reads them, the login route prunes them.
    const path = new URL(`${this.#config.baseUrl}${mountPath}${this.#config.prefix}/${name}/`).pathname;
    return { path, maxAge: TRANSACTION_TTL_SECONDS, secure: this.#config.secureCookies };
  }

  /** The cookie name for one more login: a free slot (any), else the one of the oldest (or unreadable) login. */
  async #freeSlot(cookies: RequestCookies): Promise<string> {
    const taken = new Set(cookies.names());
    const free = SLOT_NAMES.map((slot) => this.#cookieName(slot)).filter((cookieName) => !taken.has(cookieName));
    // At random among the free ones: logins started in two tabs at once then rarely share a slot.
    if (free.length > 0) return free[Math.floor(Math.random() * free.length)] as string;
    // None free: all five slots hold a login, so there is an oldest (an unreadable one counts as
    // oldest; of equally old ones, the first slot's).
    const age = (login: Pending) => login.transaction?.createdAt ?? 0;
    const pending = await this.#pending(cookies);
    return pending.reduce((oldest, login) => (age(login) < age(oldest) ? login : oldest)).cookieName;
  }

  /** The logins in flight in this browser, read from their slots (other names are not ours). */
  async #pending(cookies: RequestCookies): Promise<Pending[]> {
    const pending: Pending[] = [];
    for (const cookieName of SLOT_NAMES.map((slot) => this.#cookieName(slot))) {
      const sealed = cookies.get(cookieName);
      if (sealed !== undefined)
        pending.push({ cookieName, transaction: this.#sealer.unseal<Transaction>(sealed, { cache: false }) });
    }
    return pending;
  }

  /**
   * For a provider that may not echo `state`: the newest of this provider's transactions. Their
   * cookies are scoped to this provider's routes, so the browser sends only these. Only a
   * login started in the last two minutes qualifies: without `state` (and such providers take no
   * PKCE either) nothing else binds the code to this browser, so the window for a forged callback
   * (login CSRF) is kept short.
   */
  async #newest(name: string, cookies: RequestCookies) {
    let newest: { cookieName: string; transaction: Transaction } | undefined;
    for (const { cookieName, transaction } of await this.#pending(cookies)) {
      if (transaction?.provider !== name) continue;
      if (transaction.createdAt < Date.now() - STATELESS_WINDOW_MS) continue;
      // Stryker disable next-line EqualityOperator: `>=` differs only for two logins in one millisecond, where either is as valid
      if (!newest || transaction.createdAt > newest.transaction.createdAt) newest = { cookieName, transaction };
    }
    return newest;
  }
}
