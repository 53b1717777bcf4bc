/**
 * Tokens in Redis, shared by every instance of an app, with the refresh lock that makes a refresh
 * happen once across all of them. Values are sealed before they get here: a dump of Redis shows
 * no token in clear.
 */
import { randomBytes } from 'node:crypto';
import type { ServerTokenStore, StoreLock } from './types.js';

/** The few ioredis commands this store uses (an ioredis `Redis` or `Cluster` fits). */
export interface RedisClient {
  mget(keys: string[]): Promise<Array<string | null>>;
  set(key: string, value: string): Promise<unknown>;
  set(key: string, value: string, secondsToken: 'EX', seconds: number): Promise<unknown>;
  set(key: string, value: string, millisecondsToken: 'PX', milliseconds: number, nx: 'NX'): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  eval(script: string, numberOfKeys: number, ...args: string[]): Promise<unknown>;
}

export interface RedisStoreOptions {
  /** An ioredis client. Give it `maxRetriesPerRequest: 1` so that commands fail fast while Redis is down. */
  client: RedisClient;
  /** Key prefix. Default `oauth:`. */
  prefix?: string | undefined;
  /** A command that takes longer fails with `store_unavailable`. Default 2000 ms. */
  commandTimeoutMs?: number | undefined;
}

// Deletes the lock only if this holder still owns it (its token), so a lock that expired and was
// taken by another instance is never released by the first one.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/**
 * A Redis token store on an ioredis client. Needs `noeviction` (an evicted key is a logged-out
 * user) and persistence if tokens should survive a Redis restart.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { redisStore } from 'oauth-middleware/redis';
 * app.use(oauthMiddleware({ ...config, store: redisStore({ client: new Redis({ maxRetriesPerRequest: 1 }) }) }));
 * ```
 */
export function redisStore(options: RedisStoreOptions): ServerTokenStore {
  const { client } = options;
  const prefix = options.prefix ?? 'oauth:';
  const timeoutMs = options.commandTimeoutMs ?? 2000;
  // The session key in braces is a Redis Cluster hash tag: one session's keys share a slot, so MGET works there too.
  const tokenKey = (key: string, provider: string) => `${prefix}tokens:{${key}}:${provider}`;
  const bounded = <T>(command: Promise<T>): Promise<T> => withTimeout(command, timeoutMs);

  return {
    kind: 'server',

    async get(key, providers) {
      if (providers.length === 0) return {};
      const values = await bounded(client.mget(providers.map((provider) => tokenKey(key, provider))));
      const found: Record<string, string> = {};
      providers.forEach((provider, i) => {
        const value = values[i];
        if (typeof value === 'string') found[provider] = value;
      });
      return found;
    },

    async put(key, provider, sealed, ttlSeconds) {
      if (ttlSeconds === undefined) await bounded(client.set(tokenKey(key, provider), sealed));
      else await bounded(client.set(tokenKey(key, provider), sealed, 'EX', Math.ceil(ttlSeconds)));
    },

    async remove(key, provider) {
      await bounded(client.del(tokenKey(key, provider)));
    },

    async lock(name, ttlMs): Promise<StoreLock | undefined> {
      const lockKey = `${prefix}lock:${name}`;
      const owner = randomBytes(16).toString('hex');
      const acquired = await bounded(client.set(lockKey, owner, 'PX', ttlMs, 'NX'));
      if (acquired !== 'OK') return undefined;
      return { release: async () => void (await bounded(client.eval(RELEASE, 1, lockKey, owner))) };
    },
  };
}

function withTimeout<T>(command: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([command, timeout]).finally(() => clearTimeout(timer));
}
