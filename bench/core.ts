/**
 * The library's own cost per request, without HTTP: `guard` + `getToken` called in a loop on the
 * core, as an adapter calls them. The HTTP rows carry the framework's and the load generator's
 * noise (10 to 30% between runs on a small machine); this figure is the part that is ours.
 */
import type * as Core from '../src/index.js';
import type { ResponseCookies } from '../src/adapter.js';
import type * as Providers from '../src/providers/index.js';

const SECRET = 'bench-secret-0123456789-abcdefghijklmnop';

/** Microseconds per request for `guard` + `getToken` on the cookie store: one session (warm), and `sessions` in turn (cold). */
export async function coreCost(lib: string, iterations: number, sessions: number): Promise<{ warm: number; cold: number }> {
  const { createOAuth } = (await import(`${lib}/index.js`)) as typeof Core;
  const { oauth2 } = (await import(`${lib}/providers/index.js`)) as typeof Providers;
  const oauth = createOAuth({
    baseUrl: 'http://127.0.0.1:3000',
    secret: SECRET,
    providers: {
      p: oauth2({
        authorization: 'http://127.0.0.1:9/authorize',
        token: 'http://127.0.0.1:9/token',
        clientId: 'bench',
        clientSecret: 'bench-client-secret-0123456789',
      }),
    },
  });
  let written: string[] = [];
  const response: ResponseCookies = {
    getSetCookie: () => written,
    setSetCookie: (values) => {
      written = values;
    },
    writable: () => true,
  };
  const cookies: string[] = [];
  const expiresAt = Math.floor(Date.now() / 1000) + 3600;
  for (let i = 0; i < sessions; i++) {
    written = [];
    await oauth.request({ method: 'GET', url: '/bench/login', headers: {} }, response).context.importTokens('p', {
      accessToken: `at-${i}`,
      refreshToken: `rt-${i}`,
      expiresAt,
    });
    cookies.push(written.map((line) => line.split(';')[0]).join('; '));
  }
  const perRequest = async (cookieOf: (i: number) => string): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < iterations; i++) {
      const scope = oauth.request({ method: 'GET', url: '/token', headers: { cookie: cookieOf(i) } }, response);
      if ((await scope.guard('p')) !== undefined) throw new Error('core bench: the session did not open');
      await scope.context.getToken('p');
    }
    return ((performance.now() - started) * 1000) / iterations;
  };
  await perRequest(() => cookies[0] as string); // warm-up (JIT)
  return {
    warm: await perRequest(() => cookies[0] as string),
    cold: await perRequest((i) => cookies[i % sessions] as string),
  };
}
