/**
 * Where the core meets its providers: every call to a provider goes through here, and every
 * failure of one comes out as an `OAuthError` naming the provider, its text free of the client's
 * secrets and of the request's own (code, PKCE verifier, tokens).
 */
import type { OAuthHooks } from './config.js';
import { forProvider, isOAuthError, OAuthError } from './errors.js';
import type { LoginChecks, ProviderClient, ProviderDefinition } from './providers/types.js';
import type { StoredTokens } from './stores/types.js';

export class ProviderSeam {
  /** Each provider's client credentials, in the forms its requests carry them (known once connected). */
  readonly #clientSecrets = new Map<string, readonly string[] | undefined>();
  readonly #providers: Readonly<Record<string, ProviderDefinition>>;
  readonly #hooks: Required<OAuthHooks>;

  constructor(providers: Readonly<Record<string, ProviderDefinition>>, hooks: Required<OAuthHooks>) {
    this.#providers = providers;
    this.#hooks = hooks;
  }

  definition(name: string): ProviderDefinition {
    const provider = Object.hasOwn(this.#providers, name) ? this.#providers[name] : undefined;
    if (!provider) throw new OAuthError('unknown_provider', 'No such provider is configured.', { provider: name.slice(0, 100) });
    return provider;
  }

  /** The provider, when it has a login for a browser to go through. */
  withBrowserLogin(name: string): ProviderDefinition {
    const provider = this.definition(name);
    if (!provider.browserLogin) {
      throw new OAuthError('login_unavailable', 'This provider has no browser login: the app imports its tokens.', {
        provider: name,
      });
    }
    return provider;
  }

  async connect(name: string): Promise<ProviderClient> {
    try {
      const ready = await this.definition(name).connect();
      if (!this.#clientSecrets.has(name)) this.#clientSecrets.set(name, ready.secrets);
      return ready;
    } catch (err) {
      throw this.error(err, name);
    }
  }

  /** A provider call's failure as an OAuthError, its text free of the client's and the request's secrets. */
  error(err: unknown, name: string, secrets?: ReadonlyArray<string | undefined>): OAuthError {
    // Either list may be absent: the undefined entries this leaves are skipped.
    const all = [this.#clientSecrets.get(name), secrets].flat();
    if (isOAuthError(err)) return forProvider(err, name, all);
    return new OAuthError('invalid_response', 'The provider call failed unexpectedly.', { provider: name, cause: err });
  }

  /** Redeems a callback's code; a failure names the provider, without the code, the verifier or the nonce in its text. */
  async exchangeCode(name: string, callbackUrl: URL, redirectUri: string, checks: LoginChecks): Promise<StoredTokens> {
    const ready = await this.connect(name);
    const secrets = [callbackUrl.searchParams.get('code') ?? undefined, checks.codeVerifier, checks.nonce];
    return this.#call(name, secrets, () => ready.exchangeCode(callbackUrl, redirectUri, checks));
  }

  /** Refreshes `tokens` with `refreshToken`; a failure's text holds neither token. */
  async refresh(name: string, tokens: StoredTokens, refreshToken: string): Promise<StoredTokens> {
    const ready = await this.connect(name);
    return this.#call(name, [refreshToken, tokens.accessToken], () => ready.refresh(refreshToken));
  }

  /**
   * New tokens for a grant whose refresh token was refused, where the provider can mint them
   * (Cal.com's force-refresh, when allowed); undefined where it cannot.
   */
  async recover(name: string, tokens: StoredTokens, refreshToken: string): Promise<StoredTokens | undefined> {
    const ready = await this.connect(name);
    const { recover } = ready;
    if (!recover) return undefined;
    return this.#call(name, [refreshToken, tokens.accessToken], () => recover(tokens.extras));
  }

  /** Reads a token answer the app obtained from the provider itself (`importTokens`). */
  async readTokens(name: string, answer: unknown): Promise<StoredTokens> {
    const ready = await this.connect(name);
    return this.#call(name, [], async () => ready.readTokens(answer));
  }

  async #call<T>(name: string, secrets: ReadonlyArray<string | undefined>, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.error(err, name, secrets);
    }
  }

  /** Revokes the refresh token (which ends the grant) or else the access token; a failure is reported, not thrown. */
  async revoke(name: string, tokens: StoredTokens): Promise<void> {
    try {
      const ready = await this.connect(name);
      await ready.revoke?.(tokens);
    } catch (err) {
      this.#hooks.onError(this.error(err, name, [tokens.refreshToken, tokens.accessToken]));
    }
  }
}
