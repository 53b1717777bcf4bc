/**
 * The fast unseal (src/iron.ts) against iron-session itself, the format's reference:
 * - whatever iron-session seals opens to the same JSON, for any JSON value (property test), with a
 *   lone password or a rotated set (any id it sealed under, while that id is still held);
 * - whatever iron-session refuses, it refuses: another password, a dropped id, a tampered character
 *   anywhere, a seal past its expiration by more than iron's minute of skew, another version suffix,
 *   a truncated or padded seal; and it accepts a seal within that minute, as iron-session does;
 * - the sealer (src/session.ts) opens through it: a value this library seals opens with
 *   iron-session's `unsealData`, and one iron-session seals opens here.
 */
import fc from 'fast-check';
import { sealData, unsealData } from 'iron-session';
import { describe, expect, it } from 'vitest';
import { unsealIron } from '../src/iron.js';
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
});

describe('Sealer', () => {
  it('seals what iron-session opens and opens what iron-session seals, through a password rotation', async () => {
    const before = new Sealer(ONE);
    const sealed = await before.seal({ tokens: 'x' }, 3600, { cache: false });
    expect(await unsealData(sealed, { password: ONE, ttl: 0 })).toMatchObject({ data: { tokens: 'x' } });

    const after = new Sealer({ 1: ONE, 2: TWO });
    expect(await after.unseal(sealed, { cache: false })).toEqual({ tokens: 'x' });
    const resealed = await after.seal({ tokens: 'y' }, 3600, { cache: false });
    expect(await unsealData(resealed, { password: { 2: TWO }, ttl: 0 })).toMatchObject({ data: { tokens: 'y' } });
    expect(await before.unseal(resealed, { cache: false })).toBeUndefined();

    const fromIronSession = await sealData(
      { exp: Math.floor(Date.now() / 1000) + 60, data: { z: 1 } },
      { password: { 2: TWO }, ttl: 60 },
    );
    expect(await after.unseal(fromIronSession, { cache: false })).toEqual({ z: 1 });
  });
});
