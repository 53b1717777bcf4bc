import type { ServerTokenStore } from './types.js';

/**
 * Keeps tokens in this process's memory. For development and single-instance apps: tokens are
 * lost on restart and not shared between instances (use `redisStore` for that).
 *
 * @example
 * ```ts
 * app.use(oauthMiddleware({ ...config, store: memoryStore() }));
 * ```
 */
export function memoryStore(): ServerTokenStore {
  const entries = new Map<string, { sealed: string; expiresAt: number }>();
  const id = (key: string, provider: string) => `${key}\u0000${provider}`;
  // Abandoned sessions are never read again: every so many writes, expired entries are swept.
  let writes = 0;
  const sweep = () => {
    const now = Date.now();
    for (const [k, entry] of entries) if (entry.expiresAt <= now) entries.delete(k);
  };
  const current = (key: string, provider: string): string | undefined => {
    const entry = entries.get(id(key, provider));
    if (entry && entry.expiresAt > Date.now()) return entry.sealed;
    if (entry) entries.delete(id(key, provider));
    return undefined;
  };
  const put = (key: string, provider: string, sealed: string, ttlSeconds: number | undefined) => {
    if (++writes % 1000 === 0) sweep();
    entries.set(id(key, provider), { sealed, expiresAt: ttlSeconds === undefined ? Infinity : Date.now() + ttlSeconds * 1000 });
  };
  return {
    kind: 'server',
    async get(key, providers) {
      const found: Record<string, string> = {};
      for (const provider of providers) {
        const sealed = current(key, provider);
        if (sealed !== undefined) found[provider] = sealed;
      }
      return found;
    },
    async put(key, provider, sealed, ttlSeconds) {
      put(key, provider, sealed, ttlSeconds);
    },
    async remove(key, provider) {
      entries.delete(id(key, provider));
    },
    // One thread: a compare and the write after it are atomic as they are.
    async putIf(key, provider, sealed, ttlSeconds, expected) {
      const stored = current(key, provider);
      if (stored !== expected && stored !== sealed) return false;
      put(key, provider, sealed, ttlSeconds);
      return true;
    },
    async removeIf(key, provider, expected) {
      if (current(key, provider) !== expected) return false;
      entries.delete(id(key, provider));
      return true;
    },
  };
}
