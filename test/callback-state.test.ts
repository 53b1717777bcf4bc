/**
 * How a callback is bound to a login of this browser, on every adapter, over real HTTP:
 * - a provider that restarts logins begun at the provider (Pipedrive, `withoutState: 'restart'`)
 *   sends only a bare code (no state, no error) to its login route, and only when no login is in
 *   flight; anything else is refused as it would be for any provider;
 * - a callback carrying a state is matched by that state alone, whatever the provider: never by
 *   being the newest login in flight;
 * - a provider that may not echo state (Cal.com platform, `withoutState: 'newest-login'`) takes the
 *   newest login of this provider started in the last two minutes (the window included), whatever
 *   cookie slot holds it.
 */
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createOAuth } from '../src/index.js';
import { calcomPlatform, pipedrive } from '../src/providers/index.js';
import { type Emulator, startCalcomPlatformEmulator, startPipedriveEmulator } from '../emulators/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

/** Well-formed as our states are (43 base64url characters), but the state of no login. */
const FOREIGN_STATE = 'Q'.repeat(43);
/** Transaction cookies over http (no `__Secure-` prefix), one per slot: `oauth_tx.0` to `oauth_tx.4`. */
const TX = 'oauth_tx.';
/** A login without state is bound to the newest one started at most this long ago. */
const STATELESS_WINDOW_MS = 2 * 60 * 1000;

let op: TestServer;
let pd: Emulator;
let cal: Emulator;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
  pd = await startPipedriveEmulator({ redirectUri: `${BASE_URL}/auth/pd/callback` });
  cal = await startCalcomPlatformEmulator({ redirectUri: `${BASE_URL}/auth/cal/callback` });
});
afterAll(async () => {
  await op?.close();
  await pd?.close();
  await cal?.close();
});

const credentials = (e: Emulator) => ({ clientId: e.clientId, clientSecret: e.clientSecret, endpoints: e.endpoints });

/** The `Set-Cookie` lines of a response. */
function setCookies(res: request.Response): string[] {
  const lines = res.headers['set-cookie'] as string[] | string | undefined;
  return lines === undefined ? [] : ([] as string[]).concat(lines);
}

/** The one transaction cookie a login route wrote: its value, sealed, is bound to no cookie name. */
function sealedTransaction(res: request.Response): string {
  const lines = setCookies(res).filter((line) => line.startsWith(TX));
  expect(lines).toHaveLength(1);
  const pair = (lines[0] as string).split(';')[0] as string;
  return pair.slice(pair.indexOf('=') + 1);
}

describe.each(adapters)('$name adapter', (adapter) => {
  let app: RunningApp;
  beforeAll(async () => {
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 's'.repeat(40),
      providers: { op: testProvider(op), pd: pipedrive(credentials(pd)), cal: calcomPlatform(credentials(cal)) },
    });
    app = await adapter.start(oauth);
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => {
    op.reset();
    pd.reset();
    cal.reset();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  describe('Pipedrive (restart), with no login in flight', () => {
    it('sends a bare code, with no state, to the login route: an install begun at the marketplace', async () => {
      const res = await request(app.server).get('/auth/pd/callback?code=marketplace-code').expect(302);
      expect(res.headers.location).toBe('/auth/pd/login');
      expect(pd.counts.token).toBe(0);
    });

    // A state, or an error, says the callback answers a login of some browser (the provider
    // echoes both): not this one's, since none is in flight. Without a code there is nothing to
    // restart. Each is refused as for any provider, never turned into a fresh login.
    it.each([
      ['a code with a state that is not ours', `code=c&state=${FOREIGN_STATE}`],
      ['a denial without state', 'error=access_denied'],
      ['a denial without state, with a code', 'error=access_denied&code=c'],
      ['neither code, state nor error', ''],
    ])('refuses %s as state_mismatch instead of restarting', async (_case, query) => {
      const res = await request(app.server).get(`/auth/pd/callback?${query}`).expect(400);
      expect(res.body.error).toBe('state_mismatch');
      expect(pd.counts.token).toBe(0);
    });
  });

  describe('a callback with a state', () => {
    it('is refused when the state is no login in flight, the login in flight left intact (OIDC)', async () => {
      const browser = request.agent(app.server);
      const started = await browser.get('/auth/op/login').expect(302);
      const back = await completeLogin(started.headers.location as string);
      const forged = new URL(back);
      forged.searchParams.set('state', FOREIGN_STATE);
      const refused = await browser.get(forged.pathname + forged.search).expect(400);
      expect(refused.body.error).toBe('state_mismatch');
      expect(op.counts.authorization_code).toBe(0);
      // The user's own callback still completes its login.
      await browser.get(back.pathname + back.search).expect(302);
      expect(op.counts.authorization_code).toBe(1);
    });

    it('is refused when the state is no login in flight, even where a stateless callback takes the newest login (Cal.com platform)', async () => {
      const browser = request.agent(app.server);
      const started = await browser.get('/auth/cal/login').expect(302);
      const back = await cal.authorize(started.headers.location as string);
      back.searchParams.set('state', FOREIGN_STATE);
      const refused = await browser.get(back.pathname + back.search).expect(400);
      expect(refused.body.error).toBe('state_mismatch');
      expect(cal.counts.token).toBe(0);
    });

    it('completes the login whose state it carries, not the newest in flight (OIDC)', async () => {
      const browser = request.agent(app.server);
      // The older login a second before the newer one: their order never rests on a tie.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 1000 });
      const older = await browser.get('/auth/op/login?returnTo=/older').expect(302);
      vi.useRealTimers();
      await browser.get('/auth/op/login?returnTo=/newer').expect(302);
      const back = await completeLogin(older.headers.location as string);
      const res = await browser.get(back.pathname + back.search).expect(302);
      expect(res.headers.location).toBe('/older');
    });
  });

  describe('Cal.com platform (newest-login), a callback without state', () => {
    it('takes a login exactly two minutes old, and refuses one a millisecond older', async () => {
      const browser = request.agent(app.server);
      vi.useFakeTimers({ toFake: ['Date'] });
      const first = Date.now();
      const started = await browser.get('/auth/cal/login?returnTo=/in-time').expect(302);
      const back = await cal.authorize(started.headers.location as string);
      vi.setSystemTime(first + STATELESS_WINDOW_MS);
      const taken = await browser.get(back.pathname + back.search).expect(302);
      expect(taken.headers.location).toBe('/in-time');

      const second = Date.now();
      const late = await browser.get('/auth/cal/login?returnTo=/too-late').expect(302);
      const lateBack = await cal.authorize(late.headers.location as string);
      vi.setSystemTime(second + STATELESS_WINDOW_MS + 1);
      const refused = await browser.get(lateBack.pathname + lateBack.search).expect(400);
      expect(refused.body.error).toBe('state_mismatch');
      expect(cal.counts.token).toBe(1);
    });

    // Slots are taken at random; here each login is placed in a chosen slot, both ways round, so
    // that neither the first nor the last slot read can pass for the newest.
    it.each([
      ['0', '1'],
      ['1', '0'],
    ])('completes the newest of two logins in flight (newer in slot %s, older in slot %s)', async (newerSlot, olderSlot) => {
      vi.useFakeTimers({ toFake: ['Date'] });
      const now = Date.now();
      vi.setSystemTime(now - 1000);
      const older = await request(app.server).get('/auth/cal/login?returnTo=/older').expect(302);
      vi.setSystemTime(now);
      const newer = await request(app.server).get('/auth/cal/login?returnTo=/newer').expect(302);
      const back = await cal.authorize(newer.headers.location as string);
      const cookie = `${TX}${newerSlot}=${sealedTransaction(newer)}; ${TX}${olderSlot}=${sealedTransaction(older)}`;
      const res = await request(app.server)
        .get(back.pathname + back.search)
        .set('cookie', cookie)
        .expect(302);
      expect(res.headers.location).toBe('/newer');
      // The newer login's cookie is spent; the older one stays for its own callback.
      const written = setCookies(res).filter((line) => line.startsWith(TX));
      expect(written).toHaveLength(1);
      expect(written[0]).toMatch(new RegExp(`^${TX.replace('.', '\\.')}${newerSlot}=; Max-Age=0;`));
    });
  });
});
