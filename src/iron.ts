/**
 * iron-session's seals (iron's `Fe26.2` format, iron-session's `~2` version suffix), made and
 * opened with node:crypto's synchronous primitives: ~40 us to open where iron-session's WebCrypto
 * path takes ~0.7 ms and @hapi/iron's (asynchronous pbkdf2 on the thread pool) ~0.25 ms, measured
 * on these machines. Opening is the whole cost of a request carrying a session this process has not
 * opened before (every request behind a load balancer with more users than the cache holds), and
 * sealing that of every login and refresh: hence hand-written.
 *
 * Nothing here is a cipher or a MAC of our own: PBKDF2-SHA1 (1 iteration, 32 bytes, a random salt's
 * hex text as salt), HMAC-SHA256 and AES-256-CBC come from node:crypto, with the parameters iron's
 * defaults fix. iron-session stays the format's reference: tests prove both directions against it,
 * password rotation included (test/iron.test.ts).
 */
import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

import type { Secret } from './session.js';

const MAC_PREFIX = 'Fe26.2';
const VERSION_SUFFIX = '~2';
// iron lets a seal outlive its expiration by this much clock skew, as iron-session does.
const SKEW_MS = 60_000;

/**
 * `value` as JSON, sealed as iron-session's `sealData` seals it: under the highest password id, and
 * expiring (by iron's clock) `ttlSeconds` from now, never when 0.
 */
export function sealIron(value: unknown, passwords: Secret, ttlSeconds: number, now = Date.now()): string {
  const byId = typeof passwords === 'string' ? { 1: passwords } : passwords;
  const id = String(Math.max(...Object.keys(byId).map(Number)));
  const password = byId[id] as string;
  const encryptionSalt = randomSalt();
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key(password, encryptionSalt), iv);
  const encrypted = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  const expiration = ttlSeconds > 0 ? String(now + ttlSeconds * 1000) : '';
  const macBase = [MAC_PREFIX, id, encryptionSalt, iv.toString('base64url'), encrypted.toString('base64url'), expiration].join(
    '*',
  );
  const macSalt = randomSalt();
  const mac = createHmac('sha256', key(password, macSalt)).update(macBase).digest('base64url');
  return `${macBase}*${macSalt}*${mac}${VERSION_SUFFIX}`;
}

/**
 * The JSON a seal holds, or undefined when it is malformed, tampered, sealed with a password
 * `passwords` does not hold, or past its own expiration. Never throws.
 */
export function unsealIron(sealed: string, passwords: Secret, now = Date.now()): unknown {
  if (!sealed.endsWith(VERSION_SUFFIX)) return undefined;
  const parts = sealed.slice(0, -VERSION_SUFFIX.length).split('*');
  if (parts.length !== 8) return undefined;
  const [prefix, passwordId, encryptionSalt, iv, encrypted, expiration, macSalt, mac] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (prefix !== MAC_PREFIX) return undefined;
  if (expiration !== '' && (!/^\d+$/.test(expiration) || Number(expiration) <= now - SKEW_MS)) return undefined;
  const password = passwordFor(passwords, passwordId);
  if (password === undefined) return undefined;

  const macBase = parts.slice(0, 6).join('*');
  const expected = Buffer.from(createHmac('sha256', key(password, macSalt)).update(macBase).digest('base64url'));
  const given = Buffer.from(mac);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;

  // Authenticated from here on: a failure below is a seal made with other parameters, not an attack.
  try {
    const decipher = createDecipheriv('aes-256-cbc', key(password, encryptionSalt), Buffer.from(iv, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(encrypted, 'base64url')), decipher.final()]);
    return JSON.parse(plain.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** iron-session's lookup: a lone password has id `1`; a seal without an id asks for `default`. */
function passwordFor(passwords: Secret, id: string): string | undefined {
  const byId = typeof passwords === 'string' ? { 1: passwords } : passwords;
  return Object.hasOwn(byId, id || 'default') ? byId[id || 'default'] : undefined;
}

/** 256 random bits as hex, as iron draws its salts. */
function randomSalt(): string {
  return randomBytes(32).toString('hex');
}

function key(password: string, salt: string): Buffer {
  return pbkdf2Sync(password, salt, 1, 32, 'sha1');
}
