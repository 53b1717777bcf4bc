/** After the whole run: remove the keys the tests left in the machine's Redis (all under `test:`). */
import { Redis } from 'ioredis';
import { REDIS_URL } from './redis.js';

export default function setup() {
  return async function teardown() {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 1000 });
    client.on('error', () => undefined);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', 'test:*', 'COUNT', 1000);
        if (keys.length > 0) await client.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  };
}
