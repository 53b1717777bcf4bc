/**
 * http: is allowed for loopback hosts only (local development and tests), for the app's own
 * `baseUrl` and for a provider's URLs alike. Names under `localhost` (`acme.localhost`) are
 * loopback too (RFC 6761 §6.3), as browsers treat them: a URL template
 * `http://{subdomain}.localhost:port/...` stands in for a provider's per-customer hosts.
 */
export function isLoopback(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || url.hostname.endsWith('.localhost');
}

/** What is wrong with a URL's scheme, when anything is: https:, or http: on a loopback host. */
export function insecureScheme(url: URL): string | undefined {
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url))) return undefined;
  return 'must use https: (http: only for localhost, 127.0.0.1 or ::1)';
}
