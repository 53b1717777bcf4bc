/**
 * Strict emulators of awkward OAuth providers, to test your own app against them without network
 * access or test accounts. Each one is a small HTTP server on 127.0.0.1 serving the provider's real
 * paths, following its contract (shared/providers/CONTRACTS.md) and refusing what the provider
 * would refuse: a `scope` Pipedrive does not take, a refresh posted to `?refresh=` instead of
 * Dropbox Sign's `?refresh`, a reused Cal.com refresh token. The authorization endpoint approves at
 * once as a fixed user; `declineNext`, `failWith` and `accessTokenTtl` make the unhappy paths happen
 * on demand, and `counts` and `rejections` tell what your app actually sent.
 *
 * @example
 * ```ts
 * import { startPipedriveEmulator } from 'oauth-middleware/testing';
 * import { pipedrive } from 'oauth-middleware/providers';
 *
 * const emulator = await startPipedriveEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/pipedrive/callback' });
 * const provider = pipedrive({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints });
 * // Start your app with `provider`, GET /auth/pipedrive/login, and follow its Location as the user:
 * const callback = await emulator.authorize(loginResponse.headers.get('location')!); // your callback, ?code=…&state=…
 * // GET `callback` with the login cookies: your app exchanges the code and holds tokens.
 * emulator.accessTokenTtl = 0; // tokens issued from now on are born expired
 * // ... exercise a route that refreshes, then check what your app sent:
 * expect(emulator.counts.token).toBe(1);
 * expect(emulator.rejections).toEqual([]);
 * await emulator.close();
 * ```
 */
export type { Emulator, EmulatorEndpoints, EmulatorOptions } from './types.js';
export { startPipedriveEmulator } from './pipedrive.js';
export { startDropboxSignEmulator, type DropboxSignEmulatorOptions } from './dropbox-sign.js';
export { startCalcomEmulator, type CalcomEmulatorOptions } from './calcom.js';
export { startCalcomPlatformEmulator, type CalcomPlatformEmulatorOptions } from './calcom-platform.js';
export {
  startSunshineConversationsEmulator,
  type SunshineConversationsEmulator,
  type SunshineConversationsEmulatorOptions,
} from './sunshine-conversations.js';
