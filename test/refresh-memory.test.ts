/**
 * What a process remembers of the refreshes it made: the successor of every spent refresh token,
 * for ten minutes, bounded by memory rather than by a count that a busy process outgrows in
 * seconds. The HTTP behaviour it serves (a request with a pre-refresh cookie gets the new tokens)
 * is in contract.test.ts; here, its size, which no HTTP test can reach in reasonable time.
 */
import { describe, expect, it } from 'vitest';
import type { StoredTokens } from '../src/stores/types.js';
import { RefreshCoordinator } from '../src/tokens.js';

const tokens = (i: number, generation: number): StoredTokens => ({
  accessToken: `access-${i}-${generation}-${'a'.repeat(900)}`, // a JWT-sized access token
  tokenType: 'Bearer',
  refreshToken: `refresh-${i}-${generation}`,
  extras: {},
});

describe('the successors of spent refresh tokens', () => {
  it('are remembered for 20,000 refreshes of 1 KB tokens (the former count bound kept 5000)', async () => {
    const refreshes = new RefreshCoordinator();
    for (let i = 0; i < 20_000; i++) {
      const spent = tokens(i, 0);
      await refreshes.refresh('p', spent.refreshToken as string, async () => tokens(i, 1));
    }
    // The very first grant's pre-refresh cookie still finds its successor.
    expect(refreshes.latest('p', tokens(0, 0))?.accessToken).toBe(tokens(0, 1).accessToken);
    expect(refreshes.latest('p', tokens(19_999, 0))?.accessToken).toBe(tokens(19_999, 1).accessToken);
  });
});
