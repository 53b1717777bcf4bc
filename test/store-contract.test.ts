/** What every server-side token store promises, run over the memory store and a real Redis. */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore, type ServerTokenStore } from '../src/index.js';
import { redisStore } from '../src/stores/redis.js';
import { ready, redisClient, uniquePrefix } from './support/redis.js';

let client: Redis;
beforeAll(async () => {
  client = redisClient();
  await ready(client);
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

  it('writes over an expected value only (or over itself), and removes an expected value only', async () => {
    const store = make();
    if (!store.putIf || !store.removeIf) throw new Error('this store should compare');
    await store.put('s', 'a', 'old', 60);
    expect(await store.putIf('s', 'a', 'new', 60, 'something-else')).toBe(false);
    expect(await store.get('s', ['a'])).toEqual({ a: 'old' });
    expect(await store.putIf('s', 'a', 'new', 60, 'old')).toBe(true);
    expect(await store.putIf('s', 'a', 'new', 60, 'old')).toBe(true); // a retry of a write that landed
    expect(await store.get('s', ['a'])).toEqual({ a: 'new' });
    expect(await store.putIf('gone', 'a', 'new', 60, 'old')).toBe(false); // removed meanwhile: stays removed
    expect(await store.get('gone', ['a'])).toEqual({});
    expect(await store.removeIf('s', 'a', 'old')).toBe(false);
    expect(await store.get('s', ['a'])).toEqual({ a: 'new' });
    expect(await store.removeIf('s', 'a', 'new')).toBe(true);
    expect(await store.get('s', ['a'])).toEqual({});
    await store.put('s', 'b', 'y', undefined);
    expect(await store.putIf('s', 'b', 'x', undefined, 'y')).toBe(true); // no lifetime, as put
    expect(await store.get('s', ['b'])).toEqual({ b: 'x' });
  });

  it('keeps a fenced write to its lifetime', async () => {
    const store = make();
    await store.put('s', 'a', 'old', 60);
    expect(await store.putIf?.('s', 'a', 'short', 1, 'old')).toBe(true);
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

  it('extends a lock its holder still owns, and tells a holder that lost it', async () => {
    const store = make();
    if (!store.lock) return;
    const held = await store.lock('e', 300);
    if (!held?.extend) throw new Error('this store should extend its locks');
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 100));
      expect(await held.extend(300)).toBe(true);
    }
    expect(await store.lock('e', 300)).toBeUndefined(); // 400 ms on: still held, thanks to the renewals
    await new Promise((r) => setTimeout(r, 350)); // no renewal: it expires
    const other = await store.lock('e', 300);
    expect(other).toBeDefined();
    expect(await held.extend(300)).toBe(false); // lost, and the new holder's lock is left alone
    expect(await store.lock('e', 300)).toBeUndefined();
    await other?.release();
  });
});
