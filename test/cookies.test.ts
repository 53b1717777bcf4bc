/** Cookie chunking within one response: every write sees what earlier writes of the same response did. */
import { describe, expect, it } from 'vitest';
import { readChunked, RequestCookies, writeChunked } from '../src/session.js';

const attributes = { path: '/', maxAge: 60, secure: false };

function response() {
  let lines: string[] = [];
  return {
    getSetCookie: () => lines,
    setSetCookie: (values: string[]) => {
      lines = values;
    },
    writable: () => true,
    lines: () => lines,
  };
}

/** What a browser would send next: the request's cookies with this response's writes applied. */
function next(requestCookies: Record<string, string>, lines: string[]): string {
  const jar = new Map(Object.entries(requestCookies));
  for (const line of lines) {
    const [pair = ''] = line.split(';');
    const eq = pair.indexOf('=');
    if (/Max-Age=0/.test(line)) jar.delete(pair.slice(0, eq));
    else jar.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

describe('chunked session cookie', () => {
  it('never leaves a stale single cookie when one response shrinks then grows the session', () => {
    const big = 'b'.repeat(9000);
    const res = response();
    const cookies = new RequestCookies('s.0=old0; s.1=old1', res);
    writeChunked(cookies, 's', 'small', attributes); // e.g. a logout of one provider
    writeChunked(cookies, 's', big, attributes); // then a refresh of another
    const after = new RequestCookies(next({ 's.0': 'old0', 's.1': 'old1' }, res.lines()), response());
    expect(readChunked(after, 's')).toBe(big);
    for (const line of res.lines()) expect(Buffer.byteLength(line)).toBeLessThan(4096);
  });

  it('deletes every chunk an earlier, longer value left', () => {
    const res = response();
    const cookies = new RequestCookies('s.0=a; s.1=b; s.2=c', res);
    writeChunked(cookies, 's', 'short', attributes);
    const after = new RequestCookies(next({ 's.0': 'a', 's.1': 'b', 's.2': 'c' }, res.lines()), response());
    expect(after.names().sort()).toEqual(['s']);
    expect(readChunked(after, 's')).toBe('short');
  });
});
