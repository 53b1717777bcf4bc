import type { CookieTokenStore } from './types.js';

/**
 * Keeps tokens sealed (iron-session) in the browser's cookies, split into chunks that each stay
 * under 4096 bytes. The default store: nothing to install, and every instance can read it.
 *
 * @example
 * ```ts
 * app.use(oauthMiddleware({ ...config, store: cookieStore() }));
 * ```
 */
export function cookieStore(): CookieTokenStore {
  return Object.freeze({ kind: 'cookie' as const });
}
