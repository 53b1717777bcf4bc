/**
 * Sealing (iron-session's format, through iron.ts) and the cookies this library writes: the login
 * transactions and the session. Opening a seal costs ~40 us of CPU, so a given sealed value is
 * still opened at most once per process and nothing is opened until a request asks.
 */
import { parse as parseCookieHeader, type SerializeOptions, serialize as serializeCookie } from 'cookie';
import { LRUCache } from 'lru-cache';
import { sealIron, unsealIron } from './iron.js';

export type Secret = string | Readonly<Record<string, string>>;

/** Counters, for tests and metrics. */
export interface SealStats {
  seals: number;
  unseals: number;
}

interface Envelope<T> {
  /** Expiry, epoch seconds: checked on every read, cached or not. */
  exp: number;
  data: T;
}

/**
 * Seals and unseals small objects. Unsealed values are cached by the sealed string: the string is
 * authenticated and immutable, so the cache can never return data the string does not hold.
 */
export class Sealer {
  readonly stats: SealStats = { seals: 0, unseals: 0 };
  readonly #password: Secret;
  readonly #cache = new LRUCache<string, Envelope<unknown>>({ max: 5000 });

  constructor(password: Secret) {
    this.#password = password;
  }

  seal<T extends object>(data: T, ttlSeconds: number, options: { cache: boolean }): string {
    const envelope: Envelope<T> = { exp: nowSeconds() + ttlSeconds, data: deepFreeze(data) };
    this.stats.seals++;
    // iron's own expiration is a second, independent expiry check. It allows a minute of clock
    // skew past it, so it never ends a value before `exp` does.
    const sealed = sealIron(envelope, this.#password, ttlSeconds);
    if (options.cache) this.#cache.set(sealed, envelope);
    return sealed;
  }

  /**
   * The sealed data, or undefined when the value is tampered, foreign or expired. Synchronous (the
   * opening is), so concurrent requests carrying a new value cannot open it twice: the first caches it.
   */
  unseal<T>(sealed: string, options: { cache: boolean }): T | undefined {
    let envelope = this.#cache.get(sealed) as Envelope<T> | undefined;
    if (!envelope) {
      this.stats.unseals++;
      envelope = this.#open<T>(sealed);
      // A value that does not unseal is never kept: hostile values take no room from sessions.
      if (!envelope) return undefined;
      if (options.cache) this.#cache.set(sealed, envelope);
    }
    return envelope.exp > nowSeconds() ? envelope.data : undefined;
  }

  #open<T>(sealed: string): Envelope<T> | undefined {
    // undefined for a tampered, expired, malformed or unknown-password seal.
    const value = unsealIron(sealed, this.#password) as Partial<Envelope<T>> | undefined;
    // Without our expiry it is not ours (the app's own seals, made with the same secret). One with an
    // expiry but no data reads as no data, like a value that does not unseal.
    return typeof value?.exp === 'number' ? deepFreeze(value as Envelope<T>) : undefined;
  }
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Freezes `value` and every object it holds. */
export function deepFreeze<T>(value: T): T {
  // Primitives, null and undefined count as frozen: only objects are walked.
  if (!Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

/** How an adapter lets the core read and write `Set-Cookie` on its response. */
export interface ResponseCookies {
  getSetCookie(): string[];
  setSetCookie(values: string[]): void;
  /** False once the response head is on the wire: cookies can no longer change. */
  writable(): boolean;
}

export interface CookieAttributes {
  path: string;
  maxAge: number;
  secure: boolean;
}

// RFC 6265's cookie-name token, as the `cookie` package checks it when serialising.
const COOKIE_NAME = /^[\u0021-\u003A\u003C\u003E-\u007E]+$/;

/** The cookies of one request, parsed on first use, and the writes back to its response. */
export class RequestCookies {
  #parsed: Record<string, string | undefined> | undefined;
  readonly #header: string | undefined;
  readonly #response: ResponseCookies;
  // Names this response already wrote: a later write in the same response must see them too
  // (a session shrunk to one cookie, then grown back to chunks, must not leave the single one).
  readonly #written = new Set<string>();

  constructor(header: string | undefined, response: ResponseCookies) {
    this.#header = header;
    this.#response = response;
  }

  get(name: string): string | undefined {
    return this.#all()[name];
  }

  /** Names the request carried and names this response has written. */
  names(): string[] {
    // Only names a Set-Cookie can carry: a stray `a b=1` planted by a sibling site is never ours to
    // delete, and writing it back would throw.
    const carried = Object.keys(this.#all()).filter((name) => COOKIE_NAME.test(name));
    return [...new Set([...carried, ...this.#written])];
  }

  /** False once the response head is sent: cookies can no longer change. */
  writable(): boolean {
    return this.#response.writable();
  }

  #all(): Record<string, string | undefined> {
    this.#parsed ??= this.#header ? parseCookieHeader(this.#header) : {};
    return this.#parsed;
  }

  /** Sets (or, with `undefined`, deletes) a cookie, replacing any earlier write of the same name in this response. */
  set(name: string, value: string | undefined, attributes: CookieAttributes): boolean {
    if (!this.#response.writable()) return false;
    const options: SerializeOptions = {
      httpOnly: true,
      sameSite: 'lax',
      secure: attributes.secure,
      path: attributes.path,
      maxAge: value === undefined ? 0 : attributes.maxAge,
      // Expires as well as Max-Age: older clients (and some HTTP libraries) read only Expires.
      expires: new Date(value === undefined ? 0 : Date.now() + attributes.maxAge * 1000),
    };
    const header = serializeCookie(name, value ?? '', options);
    const others = this.#response.getSetCookie().filter((line) => !line.startsWith(`${name}=`));
    this.#response.setSetCookie([...others, header]);
    this.#written.add(name);
    return true;
  }
}

// A cookie line must stay under 4096 bytes; keep room for the name and attributes.
export const CHUNK_SIZE = 3800;

/** Reads a value written by `writeChunked`: `name`, or `name.0`, `name.1`, ... concatenated. */
export function readChunked(cookies: RequestCookies, name: string): string | undefined {
  const single = cookies.get(name);
  if (single !== undefined) return single;
  const parts: string[] = [];
  for (let i = 0; ; i++) {
    const part = cookies.get(`${name}.${i}`);
    if (part === undefined) break;
    parts.push(part);
  }
  return parts.length > 0 ? parts.join('') : undefined;
}

/**
 * Writes a value as one cookie when it fits, else as numbered chunks, and deletes whatever
 * chunks of an earlier, longer value the request still carried. Hand-written: iron-session 9's
 * chunking needs Node 22.
 */
export function writeChunked(
  cookies: RequestCookies,
  name: string,
  value: string | undefined,
  attributes: CookieAttributes,
): boolean {
  const writes = pieces(name, value);
  let ok = true;
  for (const [n, piece] of writes) ok = cookies.set(n, piece, attributes) && ok;
  const written = new Set(writes.map(([n]) => n));
  const stale = cookies.names().filter((n) => (n === name || n.startsWith(`${name}.`)) && !written.has(n));
  for (const n of stale) ok = cookies.set(n, undefined, attributes) && ok;
  return ok;
}

/** The cookies a value takes, name and value: none to delete it, one when it fits, else `count` numbered chunks. */
function pieces(name: string, value: string | undefined): Array<[string, string]> {
  if (value === undefined) return [];
  const count = Math.ceil(value.length / CHUNK_SIZE);
  if (count <= 1) return [[name, value]];
  return Array.from({ length: count }, (_, i) => [`${name}.${i}`, value.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)]);
}
