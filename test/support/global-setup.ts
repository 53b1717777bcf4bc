/**
 * Names this test run, and after it removes the keys it left in the machine's Redis: only its own
 * (`test:<run>:*`), so that two runs sharing one Redis never delete each other's keys.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { REDIS_URL, runPrefix } from './redis.js';

export default function setup() {
  process.env.OAUTH_TEST_RUN ??= randomBytes(6).toString('hex');
  const pattern = `${runPrefix()}*`;
  return async function teardown() {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 1000 });
    client.on('error', () => undefined);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        if (keys.length > 0) await client.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  };
}
