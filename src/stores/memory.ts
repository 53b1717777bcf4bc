import type { ServerTokenStore, StoredTokens, TokenRecord } from './types.js';

/**
 * Keeps tokens in this process's memory. For development and single-instance apps: tokens are
 * lost on restart and not shared between instances (use a Redis store for that).
 *
 * @example
 * ```ts
 * app.use(oauthMiddleware({ ...config, store: memoryStore() }));
 * ```
 */
export function memoryStore(): ServerTokenStore {
  const records = new Map<string, Record<string, StoredTokens>>();
  return {
    kind: 'server',
    async get(key: string): Promise<TokenRecord | undefined> {
      const record = records.get(key);
      return record ? { ...record } : undefined;
    },
    async put(key: string, provider: string, tokens: StoredTokens): Promise<void> {
      records.set(key, { ...records.get(key), [provider]: tokens });
    },
    async remove(key: string, provider: string): Promise<void> {
      const record = records.get(key);
      if (!record) return;
      const { [provider]: _removed, ...rest } = record;
      if (Object.keys(rest).length === 0) records.delete(key);
      else records.set(key, rest);
    },
  };
}
