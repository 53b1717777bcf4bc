import { LRUCache } from 'lru-cache';
import type { ServerTokenStore } from './types.js';

// What the stored tokens may take, counted as the length of their sealed text: about a hundred
// thousand logins or more (a sealed token set is one to a few kilobytes).
const MEMORY_STORE_BYTES = 268_435_456; // 256 MiB

/**
 * Keeps tokens in this process's memory. For development and single-instance apps: tokens are
 * lost on restart and not shared between instances (use `redisStore` for that). Holds up to 256 MiB
 * of sealed tokens; beyond that, the least recently used are dropped.
 *
 * @example
 * ```ts
 * app.use(oauthMiddleware({ ...config, store: memoryStore() }));
 * ```
 */
export function memoryStore(): ServerTokenStore {
  // Each entry expires with its own lifetime (none: never); an expired entry is dropped when read.
  // An abandoned session is never read again, so what bounds memory is the size budget: beyond it
  // the least recently used entries go first, and those are the abandoned ones long before a
  // session still in use. A budget in bytes rather than a count: nothing is allocated up front,
  // and it is generous, since evicting a live session loses its user's tokens. Not lru-cache's
  // `ttlAutopurge`: its timers cannot wait longer than 24.8 days (Node's setTimeout limit), and a
  // session lives 30 days by default: each such timer would fire again every millisecond.
  const entries = new LRUCache<string, string>({ maxSize: MEMORY_STORE_BYTES, sizeCalculation: (sealed) => sealed.length });
  const id = (key: string, provider: string) => `${key}\u0000${provider}`;
  const current = (key: string, provider: string): string | undefined => entries.get(id(key, provider));
  const put = (key: string, provider: string, sealed: string, ttlSeconds: number | undefined) => {
    entries.set(id(key, provider), sealed, { ttl: (ttlSeconds ?? 0) * 1000 }); // a ttl of 0: never expires
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
