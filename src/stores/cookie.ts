import type { CookieTokenStore } from './types.js';

/**
 * Keeps tokens sealed (in iron-session's format) in the browser's cookies, split into chunks that each stay
 * under 4096 bytes. The default store: nothing to install, and every instance can read it.
 * Browsers cap a site's cookies (about 4 KB each, some dozens in all), so tokens needing more than
 * `maxChunks` cookies (default 4) fail with `session_too_large` rather than a cookie silently
 * dropped: use a server-side store then.
 *
 * @example
 * ```ts
 * app.use(oauthMiddleware({ ...config, store: cookieStore() }));
 * ```
 */
export function cookieStore(options: { maxChunks?: number } = {}): CookieTokenStore {
  const maxChunks = options.maxChunks ?? 4;
  return Object.freeze({ kind: 'cookie' as const, maxChunks });
}
