/**
 * Names under `localhost` (`user-company.localhost`) resolved to 127.0.0.1, as RFC 6761 §6.3 asks
 * of resolvers: systemd-resolved and macOS do it, a plain glibc (`hosts: files dns`) does not. The
 * Sunshine emulator serves the customer's own host as `{subdomain}.localhost`, so that a test can
 * see which subdomain a revocation went to (its `Host`). Only name resolution changes: the requests
 * are real HTTP to the emulator. Node's `net` (and so `fetch`) looks names up through `dns.lookup`.
 */
import dns from 'node:dns';

type Lookup = (hostname: string, options: unknown, callback: (...args: unknown[]) => void) => void;

/** Installs the resolution in this process; returns what undoes it. */
export function resolveLocalhostNames(): () => void {
  const original = dns.lookup as unknown as Lookup;
  const lookup: Lookup = (hostname, options, callback) => {
    const [opts, done] = typeof options === 'function' ? [{}, options as typeof callback] : [options, callback];
    if (typeof hostname !== 'string' || !hostname.toLowerCase().endsWith('.localhost')) {
      original.call(dns, hostname, opts, done);
      return;
    }
    const all = typeof opts === 'object' && opts !== null && (opts as { all?: unknown }).all === true;
    if (all) process.nextTick(done, null, [{ address: '127.0.0.1', family: 4 }]);
    else process.nextTick(done, null, '127.0.0.1', 4);
  };
  (dns as unknown as { lookup: Lookup }).lookup = lookup;
  return () => {
    (dns as unknown as { lookup: Lookup }).lookup = original;
  };
}
