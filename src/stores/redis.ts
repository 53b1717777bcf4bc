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
  /** The connection's state (ioredis's `status`), when the client tells it: commands fail at once while it reconnects. */
  readonly status?: string;
}

export interface RedisStoreOptions {
  /**
   * An ioredis client. Give it `maxRetriesPerRequest: 1`: a command caught by a dropped connection
   * then fails at the first failed reconnection rather than after twenty.
   */
  client: RedisClient;
  /** Key prefix. Default `oauth:`. */
  prefix?: string | undefined;
  /**
   * A command that takes longer fails with `store_unavailable`, and for as long again the store
   * fails commands at once (a Redis that stopped answering is not waited for twice). Default 2000 ms.
   */
  commandTimeoutMs?: number | undefined;
}

// Each script compares a value with the one this caller last knew (a lock's owner token, sealed
// tokens) and acts only if it is still there, in one step: nothing can be written in between.
// Deletes a key holding ARGV[1]: a lock's release (only by its owner) and the removal of refused tokens.
const COMPARE_AND_DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
// Extends a lock its owner (ARGV[1]) still holds to ARGV[2] ms.
const COMPARE_AND_EXTEND =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
// Writes ARGV[1] (expiring in ARGV[3] s, or never when empty) over ARGV[2] or over itself (a retry).
const COMPARE_AND_SET = `local current = redis.call('get', KEYS[1])
if current ~= ARGV[2] and current ~= ARGV[1] then return 0 end
if ARGV[3] == '' then redis.call('set', KEYS[1], ARGV[1]) else redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[3]) end
return 1`;

// ioredis states in which a command would wait in the offline queue for a connection that is gone.
const DISCONNECTED: ReadonlySet<string> = new Set(['close', 'reconnecting', 'end']);

class CommandTimeout extends Error {}

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

  // A request makes several commands in a row (read, lock, write, release): each waiting out its
  // own timeout while Redis is gone would add up to many seconds. So commands fail at once while
  // Redis is known to be out of reach: while the client reconnects (rather than queueing in
  // ioredis's offline queue), and for one timeout after a command timed out (a host that vanished
  // answers nothing, not even a refusal). Any answer ends the latter.
  let silentUntil = 0;
  const bounded = async <T>(command: () => Promise<T>): Promise<T> => {
    // Stryker disable next-line StringLiteral: no status is one of the disconnected ones, whatever stands in for it.
    if (DISCONNECTED.has(client.status ?? '')) throw new Error('Redis is not connected (the client is reconnecting).');
    if (Date.now() < silentUntil) throw new Error(`Redis did not answer within ${timeoutMs} ms a moment ago.`);
    try {
      const result = await withTimeout(command(), timeoutMs);
      silentUntil = 0;
      return result;
    } catch (err) {
      if (err instanceof CommandTimeout) silentUntil = Date.now() + timeoutMs;
      throw err;
    }
  };

  return {
    kind: 'server',

    async get(key, providers) {
      if (providers.length === 0) return {};
      const values = await bounded(() => client.mget(providers.map((provider) => tokenKey(key, provider))));
      const found: Record<string, string> = {};
      providers.forEach((provider, i) => {
        const value = values[i];
        if (typeof value === 'string') found[provider] = value;
      });
      return found;
    },

    async put(key, provider, sealed, ttlSeconds) {
      if (ttlSeconds === undefined) await bounded(() => client.set(tokenKey(key, provider), sealed));
      else await bounded(() => client.set(tokenKey(key, provider), sealed, 'EX', Math.ceil(ttlSeconds)));
    },

    async remove(key, provider) {
      await bounded(() => client.del(tokenKey(key, provider)));
    },

    async putIf(key, provider, sealed, ttlSeconds, expected) {
      const ttl = ttlSeconds === undefined ? '' : String(Math.ceil(ttlSeconds));
      return (await bounded(() => client.eval(COMPARE_AND_SET, 1, tokenKey(key, provider), sealed, expected, ttl))) === 1;
    },

    async removeIf(key, provider, expected) {
      return (await bounded(() => client.eval(COMPARE_AND_DELETE, 1, tokenKey(key, provider), expected))) === 1;
    },

    async lock(name, ttlMs): Promise<StoreLock | undefined> {
      const lockKey = `${prefix}lock:${name}`;
      const owner = randomBytes(16).toString('hex');
      const acquired = await bounded(() => client.set(lockKey, owner, 'PX', Math.ceil(ttlMs), 'NX'));
      if (acquired !== 'OK') return undefined;
      return {
        release: async () => void (await bounded(() => client.eval(COMPARE_AND_DELETE, 1, lockKey, owner))),
        extend: async (ms) =>
          (await bounded(() => client.eval(COMPARE_AND_EXTEND, 1, lockKey, owner, String(Math.ceil(ms))))) === 1,
      };
    },
  };
}

function withTimeout<T>(command: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CommandTimeout(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([command, timeout]).finally(() => clearTimeout(timer));
}
