/**
 * A preset's default URLs and its emulator's URLs differ in their host only: the paths the
 * emulator serves are the very paths the preset sends to the real provider. Otherwise a test
 * against the emulator, with `endpoints` pointing at it, could pass while the preset's own default
 * path is wrong. One row per preset whose emulator exists; add a row with each new emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  calcomPlatformProfile,
  calcomProfile,
  dropboxSignProfile,
  pipedriveProfile,
  type ProviderProfile,
  sunshineConversationsProfile,
} from '../src/providers/index.js';
import {
  type Emulator,
  type EmulatorEndpoints,
  startCalcomEmulator,
  startCalcomPlatformEmulator,
  startDropboxSignEmulator,
  startPipedriveEmulator,
  startSunshineConversationsEmulator,
} from '../emulators/index.js';

type Endpoint = Exclude<keyof EmulatorEndpoints, 'api' | 'managedUsers'>;

interface Row {
  preset: string;
  profile: ProviderProfile;
  start: (redirectUri: string) => Promise<Emulator>;
  /** Every URL the preset uses, by the emulator endpoint serving it. */
  endpoints: Endpoint[];
  /** Emulator URLs that take the place of a preset's URL template, when not in `endpoints` (Sunshine's `revokeTemplate`). */
  templates?: (emulator: Emulator) => Partial<Record<Endpoint, string>>;
}

/** The profile's own default URL for an endpoint (a refresh without its own URL goes to the token URL). */
function defaultUrl(profile: ProviderProfile, endpoint: Endpoint): string | undefined {
  switch (endpoint) {
    case 'authorization':
      return profile.authorization.url;
    case 'token':
      return profile.token.url;
    case 'refresh':
      return profile.refresh === false ? undefined : (profile.refresh?.url ?? profile.token.url);
    case 'revoke':
      return profile.revoke?.url;
    case 'tokenInfo':
      return profile.tokenInfo?.url;
    case 'recover':
      return profile.recover?.url;
  }
}

/** Path and query as sent: Dropbox Sign's valueless `?refresh` is part of what must match. */
const target = (url: string, clientId?: string) => {
  const parsed = new URL(clientId === undefined ? url : url.replaceAll('{clientId}', encodeURIComponent(clientId)));
  return decodeURI(parsed.pathname) + parsed.search;
};

const rows: Row[] = [
  {
    preset: 'pipedrive',
    profile: pipedriveProfile,
    start: (redirectUri) => startPipedriveEmulator({ redirectUri }),
    endpoints: ['authorization', 'token', 'refresh', 'revoke'],
  },
  {
    preset: 'dropboxSign',
    profile: dropboxSignProfile,
    start: (redirectUri) => startDropboxSignEmulator({ redirectUri }),
    endpoints: ['authorization', 'token', 'refresh'],
  },
  {
    preset: 'calcom',
    profile: calcomProfile,
    start: (redirectUri) => startCalcomEmulator({ redirectUri }),
    endpoints: ['authorization', 'token', 'refresh'],
  },
  {
    // No authorization URL by default: Cal.com's platform page is a mock (the emulator's stands for a first-party one).
    preset: 'calcomPlatform',
    profile: calcomPlatformProfile,
    start: (redirectUri) => startCalcomPlatformEmulator({ redirectUri }),
    endpoints: ['token', 'refresh', 'recover'],
  },
  {
    preset: 'sunshineConversations',
    profile: sunshineConversationsProfile,
    start: (redirectUri) => startSunshineConversationsEmulator({ redirectUri }),
    endpoints: ['authorization', 'token', 'revoke', 'tokenInfo'],
    templates: (e) => ({ revoke: (e as Emulator & { revokeTemplate: string }).revokeTemplate }),
  },
];

describe.each(rows)('$preset: default URLs and emulator URLs', (row) => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await row.start('http://127.0.0.1:9/auth/test/callback');
  });
  afterAll(() => emulator.close());

  it('have the same paths, the host alone differing', () => {
    const pairs = row.endpoints.map((endpoint) => {
      const preset = defaultUrl(row.profile, endpoint);
      const served = emulator.endpoints[endpoint];
      expect([endpoint, preset !== undefined && served !== undefined]).toEqual([endpoint, true]);
      return [endpoint, target(preset as string, emulator.clientId), target(served as string)];
    });
    for (const [endpoint, preset, served] of pairs) expect([endpoint, served]).toEqual([endpoint, preset]);
  });

  it('leave no URL of the preset without an emulator endpoint', () => {
    const all: Endpoint[] = ['authorization', 'token', 'refresh', 'revoke', 'tokenInfo', 'recover'];
    const used = all.filter((endpoint) => endpoint !== 'refresh' && defaultUrl(row.profile, endpoint) !== undefined);
    for (const endpoint of used) expect(row.endpoints).toContain(endpoint);
  });

  it('keep the shape of a URL template where the emulator offers one: its placeholders in the same place', () => {
    for (const [endpoint, template] of Object.entries(row.templates?.(emulator) ?? {}) as Array<[Endpoint, string]>) {
      const preset = new URL(defaultUrl(row.profile, endpoint) as string);
      const served = new URL(template);
      expect(target(template)).toBe(target(preset.href));
      const placeholders = (host: string) => host.split('.').filter((label) => /^\{\w+\}$/.test(label));
      expect(placeholders(served.hostname)).toEqual(placeholders(preset.hostname));
      expect(served.hostname.split('.')[0]).toBe(preset.hostname.split('.')[0]);
    }
  });
});
