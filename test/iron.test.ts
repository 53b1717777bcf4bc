/**
 * The fast unseal (src/iron.ts) against iron-session itself, the format's reference:
 * - whatever iron-session seals opens to the same JSON, for any JSON value (property test), with a
 *   lone password or a rotated set (any id it sealed under, while that id is still held);
 * - whatever iron-session refuses, it refuses: another password, a dropped id, a tampered character
 *   anywhere, a seal past its expiration by more than iron's minute of skew, another version suffix,
 *   a truncated or padded seal; and it accepts a seal within that minute, as iron-session does;
 * - whatever sealIron seals, iron-session opens to the same JSON (property test), under the highest
 *   password id of a rotated set, expiring by iron's clock when iron-session's own seals would;
 * - the sealer (src/session.ts) seals and opens through them: a value this library seals opens with
 *   iron-session's `unsealData`, and one iron-session seals opens here.
 */
import fc from 'fast-check';
import { webcrypto } from 'node:crypto';
import { sealData, unsealData } from 'iron-session';
import { defaults, seal as ironSeal } from 'iron-webcrypto';
import { describe, expect, it } from 'vitest';
import { sealIron, unsealIron } from '../src/iron.js';
import { Sealer } from '../src/session.js';

const ONE = 'the-first-password-at-least-32-characters';
const TWO = 'the-second-password-at-least-32-characters';

async function ironSessionOpens(sealed: string, password: string | Record<string, string>): Promise<unknown> {
  return unsealData(sealed, { password, ttl: 0 }).catch(() => ({}));
}

describe('unsealIron', () => {
  it('opens what iron-session seals, any JSON, and agrees with iron-session on it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), async (value) => {
        const sealed = await sealData(value, { password: ONE, ttl: 3600 });
        expect(unsealIron(sealed, ONE)).toEqual(await ironSessionOpens(sealed, ONE));
        expect(unsealIron(sealed, ONE)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 40 },
    );
  });

  it('opens a seal made under any password a rotated set still holds, and none other', async () => {
    const underOne = await sealData({ v: 1 }, { password: ONE, ttl: 3600 });
    const underTwo = await sealData({ v: 2 }, { password: { 1: ONE, 2: TWO }, ttl: 3600 });
    expect(underTwo).toContain('Fe26.2*2*');
    for (const passwords of [
      { 1: ONE, 2: TWO },
      { 2: TWO, 1: ONE },
    ]) {
      expect(unsealIron(underOne, passwords)).toEqual({ v: 1 });
      expect(unsealIron(underTwo, passwords)).toEqual({ v: 2 });
    }
    // The old password dropped: its seals no longer open, here as in iron-session.
    expect(unsealIron(underOne, { 2: TWO })).toBeUndefined();
    expect(await ironSessionOpens(underOne, { 2: TWO })).toEqual({});
    // A lone password is id 1: a seal made under id 2 does not open with it, even the right text.
    expect(unsealIron(underTwo, TWO)).toBeUndefined();
    expect(await ironSessionOpens(underTwo, TWO)).toEqual({});
    // A wrong password under the right id.
    expect(unsealIron(underOne, TWO)).toBeUndefined();
    expect(unsealIron(underOne, { 1: TWO })).toBeUndefined();
  });

  it('refuses a seal with any one character changed, as iron-session does', async () => {
    const sealed = await sealData({ secret: 'value' }, { password: ONE, ttl: 3600 });
    const positions = Array.from({ length: sealed.length }, (_, i) => i).filter((i) => i % 7 === 0 || i > sealed.length - 4);
    for (const i of positions) {
      const changed = sealed.slice(0, i) + (sealed[i] === 'A' ? 'B' : 'A') + sealed.slice(i + 1);
      const reference = await ironSessionOpens(changed, ONE);
      const ours = unsealIron(changed, ONE);
      // iron-session answers {} for a refused seal (and reads a missing `~2` as an older format).
      if (ours === undefined) expect(reference).not.toEqual({ secret: 'value' });
      else expect(ours).toEqual(reference);
    }
  });

  it('refuses malformed seals without throwing', () => {
    for (const value of ['', '~2', 'Fe26.2~2', 'Fe26.2*1*a*b*c*d*e*f*g~2', 'Fe26.1*1*a*b*c**e*f~2', '*'.repeat(7) + '~2']) {
      expect(unsealIron(value, ONE)).toBeUndefined();
    }
  });

  it('refuses another version suffix and a truncated or padded seal', async () => {
    const sealed = await sealData({ v: 1 }, { password: ONE, ttl: 3600 });
    expect(unsealIron(sealed.replace(/~2$/, '~3'), ONE)).toBeUndefined();
    expect(unsealIron(sealed.replace(/~2$/, ''), ONE)).toBeUndefined();
    expect(unsealIron(sealed.slice(0, -3) + '~2', ONE)).toBeUndefined();
    expect(unsealIron(`${sealed.slice(0, -2)}A~2`, ONE)).toBeUndefined();
  });

  it("keeps iron's expiration with its minute of skew, as iron-session does", async () => {
    const sealed = await sealData({ v: 1 }, { password: ONE, ttl: 10 });
    const expiration = Number(sealed.split('*')[5]);
    expect(unsealIron(sealed, ONE, expiration + 59_000)).toEqual({ v: 1 });
    expect(unsealIron(sealed, ONE, expiration + 60_000)).toBeUndefined();
    // A seal without an expiration (ttl 0) never expires by iron's clock.
    const forever = await sealData({ v: 2 }, { password: ONE, ttl: 0 });
    expect(unsealIron(forever, ONE, Date.now() + 10 ** 12)).toEqual({ v: 2 });
  });

  // iron-webcrypto is the library under iron-session: it can seal what iron-session itself never
  // does, and iron-session must still open (or refuse) it.
  it('opens a seal without a password id under the `default` password, as iron-session does', async () => {
    // iron-session marks its format with `~2` after iron's own seal.
    const sealed = `${await ironSeal(webcrypto, { v: 3 }, ONE, defaults)}~2`;
    expect(sealed.split('*')[1]).toBe('');
    expect(unsealIron(sealed, { default: ONE })).toEqual({ v: 3 });
    expect(await ironSessionOpens(sealed, { default: ONE })).toEqual({ v: 3 });
    expect(unsealIron(sealed, { 1: ONE })).toBeUndefined();
    expect(unsealIron(sealed, ONE)).toBeUndefined();
  });

  it('refuses, without throwing, a seal whose MAC holds but whose cipher is another one', async () => {
    const otherCipher = { ...defaults, encryption: { ...defaults.encryption, algorithm: 'aes-128-ctr' as const } };
    const sealed = `${await ironSeal(webcrypto, { v: 4 }, { id: '1', secret: ONE }, otherCipher)}~2`;
    expect(await ironSessionOpens(sealed, ONE)).toEqual({});
    expect(unsealIron(sealed, ONE)).toBeUndefined();
  });
});

describe('sealIron', () => {
  it('seals what iron-session opens, any JSON', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), async (value) => {
        const sealed = sealIron(value, ONE, 3600);
        expect(await unsealData(sealed, { password: ONE, ttl: 0 })).toEqual(JSON.parse(JSON.stringify(value)));
        expect(unsealIron(sealed, ONE)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 40 },
    );
  });

  it('seals under the highest password id, as iron-session does, with fresh salts every time', async () => {
    const sealed = sealIron({ v: 2 }, { 2: TWO, 10: ONE, 1: TWO }, 3600);
    expect(sealed.split('*')[1]).toBe('10');
    expect(await unsealData(sealed, { password: { 10: ONE }, ttl: 0 })).toEqual({ v: 2 });
    expect(await ironSessionOpens(sealed, { 2: TWO, 1: TWO })).toEqual({});
    expect(sealIron({ v: 1 }, ONE, 60).split('*')[1]).toBe('1');
    const [again, other] = [sealIron({ v: 2 }, ONE, 3600), sealIron({ v: 2 }, ONE, 3600)];
    expect(again).not.toBe(other);
    expect(new Set([...again.split('*').slice(2, 5), ...other.split('*').slice(2, 5)]).size).toBe(6);
  });

  it("expires by iron's clock as iron-session's own seals do, and never with a ttl of 0", async () => {
    const now = Date.now();
    const ours = sealIron({ v: 1 }, ONE, 10, now);
    expect(Number(ours.split('*')[5])).toBe(now + 10_000);
    const theirs = await sealData({ v: 1 }, { password: ONE, ttl: 10 });
    expect(Math.abs(Number(theirs.split('*')[5]) - (now + 10_000))).toBeLessThan(1000);
    const stale = sealIron({ v: 1 }, ONE, 10, now - 71_000);
    expect(await ironSessionOpens(stale, ONE)).toEqual({});
    expect(unsealIron(stale, ONE)).toBeUndefined();
    const forever = sealIron({ v: 1 }, ONE, 0);
    expect(forever.split('*')[5]).toBe('');
    expect(await unsealData(forever, { password: ONE, ttl: 0 })).toEqual({ v: 1 });
  });
});

describe('Sealer', () => {
  it('seals what iron-session opens and opens what iron-session seals, through a password rotation', async () => {
    const before = new Sealer(ONE);
    const sealed = before.seal({ tokens: 'x' }, 3600, { cache: false });
    expect(await unsealData(sealed, { password: ONE, ttl: 0 })).toMatchObject({ data: { tokens: 'x' } });

    const after = new Sealer({ 1: ONE, 2: TWO });
    expect(after.unseal(sealed, { cache: false })).toEqual({ tokens: 'x' });
    const resealed = after.seal({ tokens: 'y' }, 3600, { cache: false });
    expect(await unsealData(resealed, { password: { 2: TWO }, ttl: 0 })).toMatchObject({ data: { tokens: 'y' } });
    expect(before.unseal(resealed, { cache: false })).toBeUndefined();

    const fromIronSession = await sealData(
      { exp: Math.floor(Date.now() / 1000) + 60, data: { z: 1 } },
      { password: { 2: TWO }, ttl: 60 },
    );
    expect(after.unseal(fromIronSession, { cache: false })).toEqual({ z: 1 });
  });
});
