/** What every server-side token store promises, run over the memory store and a real Redis. */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore, type ServerTokenStore } from '../src/index.js';
import { redisStore } from '../src/stores/redis.js';
import { redisClient, uniquePrefix } from './support/redis.js';

let client: Redis;
beforeAll(() => {
  client = redisClient();
});
afterAll(() => {
  client.disconnect();
});

describe.each<[string, () => ServerTokenStore]>([
  ['memory', () => memoryStore()],
  ['redis', () => redisStore({ client, prefix: uniquePrefix('contract') })],
])('%s store', (_name, make) => {
  it('puts, gets by provider, and removes one provider without touching the others', async () => {
    const store = make();
    await store.put('s1', 'a', 'sealed-a', undefined);
    await store.put('s1', 'b', 'sealed-b', 60);
    await store.put('s2', 'a', 'other', undefined);
    expect(await store.get('s1', ['a', 'b', 'c'])).toEqual({ a: 'sealed-a', b: 'sealed-b' });
    await store.remove('s1', 'a');
    expect(await store.get('s1', ['a', 'b'])).toEqual({ b: 'sealed-b' });
    expect(await store.get('s2', ['a'])).toEqual({ a: 'other' });
    expect(await store.get('nobody', ['a'])).toEqual({});
  });

  it('forgets values after their lifetime', async () => {
    const store = make();
    await store.put('s', 'a', 'short', 1);
    expect(await store.get('s', ['a'])).toEqual({ a: 'short' });
    await new Promise((r) => setTimeout(r, 1100));
    expect(await store.get('s', ['a'])).toEqual({});
  });

  it('locks exclusively, releases only its own lock, and lets an abandoned lock expire', async () => {
    const store = make();
    if (!store.lock) return; // in-process stores need no lock: single flight covers them
    const first = await store.lock('k', 300);
    expect(first).toBeDefined();
    expect(await store.lock('k', 300)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 350)); // the holder "crashed": its lock expires
    const second = await store.lock('k', 300);
    expect(second).toBeDefined();
    await first?.release(); // too late: must not free the second holder's lock
    expect(await store.lock('k', 300)).toBeUndefined();
    await second?.release();
    expect(await store.lock('k', 300)).toBeDefined();
  });
});
