/**
 * The tokens of one request's session, whichever store keeps them. Loaded on first use, at most
 * once per request; writes go to the store (and to the response's cookies) as they happen.
 */
import { randomBytes } from 'node:crypto';
import type { ResolvedConfig } from './config.js';
import { OAuthError } from './errors.js';
import { type CookieAttributes, type RequestCookies, readChunked, type Sealer, writeChunked } from './session.js';
import type { ServerTokenStore, StoredTokens, TokenRecord } from './stores/types.js';

/** What the session cookie holds: the tokens themselves (cookie store) or a session id (server stores). */
type CookieRecord = { tokens: TokenRecord } | { sid: string };

export class RequestSession {
  readonly #config: ResolvedConfig;
  readonly #sealer: Sealer;
  readonly #cookies: RequestCookies;
  #loaded: Promise<TokenRecord> | undefined;
  #sid: string | undefined;
  // Writes of one request are applied in order, each on the result of the previous one.
  #writes: Promise<unknown> = Promise.resolve();

  constructor(config: ResolvedConfig, sealer: Sealer, cookies: RequestCookies) {
    this.#config = config;
    this.#sealer = sealer;
    this.#cookies = cookies;
  }

  load(): Promise<TokenRecord> {
    this.#loaded ??= this.#read();
    return this.#loaded;
  }

  put(provider: string, tokens: StoredTokens): Promise<void> {
    return this.#write(provider, tokens);
  }

  remove(provider: string): Promise<void> {
    return this.#write(provider, undefined);
  }

  /**
   * After a login, a server-store session moves to a new id (its tokens with it), so a session id
   * planted in the browser beforehand (session fixation) never gets to see the new tokens.
   * Cookie-store sessions need nothing: the tokens travel in a cookie nobody else can read.
   */
  renew(): Promise<void> {
    const store = this.#config.store;
    if (store.kind !== 'server') return Promise.resolve();
    const next = this.#writes.then(async () => {
      const record = await this.load();
      const previous = this.#sid;
      if (previous === undefined) return;
      this.#sid = undefined;
      for (const [provider, tokens] of Object.entries(record)) await this.#writeServer(store, provider, tokens);
      for (const provider of Object.keys(record)) await guard(() => store.remove(previous, provider));
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  get #attributes(): CookieAttributes {
    return { path: '/', maxAge: this.#config.sessionMaxAgeSeconds, secure: this.#config.secureCookies };
  }

  async #read(): Promise<TokenRecord> {
    const sealed = readChunked(this.#cookies, this.#config.cookieName);
    const record = sealed ? await this.#sealer.unseal<CookieRecord>(sealed, { cache: true }) : undefined;
    if (!record) return {};
    if ('tokens' in record) return this.#config.store.kind === 'cookie' ? record.tokens : {};
    const store = this.#config.store;
    if (store.kind !== 'server') return {};
    this.#sid = record.sid;
    return (await guard(() => store.get(record.sid))) ?? {};
  }

  #write(provider: string, tokens: StoredTokens | undefined): Promise<void> {
    const next = this.#writes.then(async () => {
      const current = await this.load();
      const { [provider]: _previous, ...others } = current;
      const updated: TokenRecord = tokens ? { ...others, [provider]: tokens } : others;
      const store = this.#config.store;
      if (store.kind === 'server') await this.#writeServer(store, provider, tokens);
      else await this.#writeCookie({ tokens: updated }, Object.keys(updated).length === 0);
      this.#loaded = Promise.resolve(updated);
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  async #writeServer(store: ServerTokenStore, provider: string, tokens: StoredTokens | undefined): Promise<void> {
    if (!tokens) {
      if (this.#sid) await guard(() => store.remove(this.#sid as string, provider));
      return;
    }
    if (!this.#sid) {
      this.#sid = randomBytes(32).toString('base64url');
      await this.#writeCookie({ sid: this.#sid }, false);
    }
    const sid = this.#sid;
    await guard(() => store.put(sid, provider, tokens));
  }

  async #writeCookie(record: CookieRecord, empty: boolean): Promise<void> {
    const sealed = empty ? undefined : await this.#sealer.seal(record, this.#config.sessionMaxAgeSeconds, { cache: true });
    if (!writeChunked(this.#cookies, this.#config.cookieName, sealed, this.#attributes)) {
      this.#config.hooks.onError(
        new Error('The session changed after the response head was sent; the new session cookie could not be set.'),
      );
    }
  }
}

/** Store failures become `store_unavailable`; the store's own message may name hosts, so it stays in `cause`. */
async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    throw new OAuthError('store_unavailable', 'The token store is unavailable.', { cause: err });
  }
}
