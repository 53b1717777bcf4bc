/**
 * "Describe your own provider": a provider this library has no preset for, defined inline with
 * `fromProfile`, against a small server speaking its own dialect (JSON bodies with camelCase names,
 * the secret in a header, refresh at `?refresh` (a valueless flag), an envelope, epoch-seconds
 * expiry, errors as `{fault: {reason, detail}}` (a shape the built-in reader does not know, read
 * through `errors.read`), DELETE revocation). The profile is the README guide's, word for word:
 * a test below evaluates the README's example and compares.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth } from '../src/index.js';
import { fromProfile, type ProviderProfile } from '../src/providers/index.js';
import { adapters } from './support/apps.js';
import { BASE_URL } from './support/authorization-server.js';

const SECRET = 'acme-secret-0123456789';

/** Acme's token service: strict about its own dialect, rotating refresh tokens. */
function startAcme() {
  const codes = new Map<string, string>(); // code -> redirectUri
  const access = new Map<string, number>(); // token -> expiresAt
  const renewals = new Set<string>();
  const calls = { token: 0, refresh: 0, revoke: 0, api: 0 };
  const ttl = 3600;
  const issue = () => {
    const token = randomBytes(8).toString('hex');
    const renew = randomBytes(8).toString('hex');
    const expiresAt = Math.floor(Date.now() / 1000) + ttl;
    access.set(token, expiresAt);
    renewals.add(renew);
    // An ID token from a provider with no OpenID issuer to check it against: to be dropped.
    const idToken = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"mallory"}').toString('base64url')}.`;
    return { result: { token, renew, expiresAt, workspace: 'w-42', id_token: idToken } };
  };
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://acme');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const fail = (status: number, code: string) => send(status, { fault: { reason: code, detail: `refused: ${code}` } });
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const code = randomBytes(8).toString('hex');
      codes.set(code, url.searchParams.get('redirect_uri') ?? '');
      const back = new URL(url.searchParams.get('redirect_uri') ?? '');
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/token') {
      // Refresh is posted to `/api/token?refresh`, a flag without a value: `?refresh=` is not accepted.
      const query = req.url?.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : undefined;
      const body = JSON.parse(await text(req)) as Record<string, string>;
      if (req.headers['content-type'] !== 'application/json') return fail(400, 'not_json');
      if (req.headers['x-acme-key'] !== SECRET) return fail(401, 'bad_key');
      if (body.grantType === 'authorization_code') {
        calls.token++;
        if (query !== undefined) return fail(400, 'bad_query');
        const code = body.code ?? '';
        if (codes.get(code) !== body.redirectUri || !body.codeVerifier) return fail(400, 'bad_code');
        codes.delete(code);
        return send(200, issue());
      }
      if (body.grantType === 'refresh_token') {
        calls.refresh++;
        if (query !== 'refresh') return fail(400, 'refresh_needs_flag');
        if (!renewals.delete(body.refreshToken ?? '')) return fail(400, 'expired_renewal');
        return send(200, issue());
      }
      return fail(400, 'bad_grant');
    }
    const bearer = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
    const valid = (access.get(bearer) ?? 0) > Date.now() / 1000;
    if (req.method === 'DELETE' && url.pathname === '/api/session') {
      calls.revoke++;
      access.delete(bearer);
      return valid ? send(200, {}) : fail(401, 'unauthorized');
    }
    if ((req.method === 'GET' || req.method === 'POST') && url.pathname === '/api/me') {
      await text(req); // read whatever body came
      calls.api++;
      return valid ? send(200, { name: 'Ada' }) : fail(401, 'unauthorized');
    }
    fail(404, 'not_found');
  });
  return {
    server,
    calls,
    access,
    renewals,
  };
}

function text(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (chunk) => (data += chunk));
    req.on('end', () => resolve(data));
  });
}

let acme: ReturnType<typeof startAcme>;
let origin: string;
beforeAll(async () => {
  acme = startAcme();
  await new Promise<void>((resolve) => acme.server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(acme.server.address() as AddressInfo).port}`;
});
afterAll(() => {
  acme.server.closeAllConnections();
  acme.server.close();
});

/** Acme's profile, as the README shows it with `https://acme.example` for `base`. */
function acmeProfile(base: string): ProviderProfile {
  return {
    name: 'acme',
    authorization: { url: `${base}/authorize`, pkce: true, state: 'always' },
    token: {
      url: `${base}/api/token`,
      encoding: 'json',
      clientAuth: { in: 'header', name: 'x-acme-key' },
      rename: {
        grant_type: 'grantType',
        redirect_uri: 'redirectUri',
        code_verifier: 'codeVerifier',
        refresh_token: 'refreshToken',
      },
    },
    refresh: { url: `${base}/api/token?refresh` },
    response: {
      envelope: 'result',
      accessToken: 'token',
      refreshToken: 'renew',
      expiry: { kind: 'epoch-seconds', path: 'expiresAt' },
      extras: ['workspace'],
    },
    errors: { read: [{ error: 'fault.reason', description: 'fault.detail' }], aliases: { expired_renewal: 'invalid_grant' } },
    revoke: { kind: 'request', url: `${base}/api/session`, method: 'DELETE', auth: 'bearer' },
  };
}

function acmeProvider() {
  return fromProfile(acmeProfile(origin), { clientId: 'my-app', clientSecret: SECRET });
}

it("is the README's example of a profile, exactly", () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const guide = readme.slice(readme.indexOf('### Describe your own provider'));
  const example = /```ts\n([\s\S]*?)```/.exec(guide)?.[1] ?? '';
  expect(example).toContain("import { fromProfile } from 'oauth-middleware/providers';");
  // The example is plain JavaScript apart from its import: run it with a fromProfile that keeps what it gets.
  const run = new Function('fromProfile', 'clientId', 'clientSecret', `${example.replace(/^import .*$/m, '')}\nreturn acme;`);
  const keep = (profile: unknown, options: unknown) => ({ profile, options });
  expect(run(keep, 'my-app', SECRET)).toEqual(
    keep(acmeProfile('https://acme.example'), { clientId: 'my-app', clientSecret: SECRET }),
  );
});

describe.each(adapters)('a provider described inline, on $name', (adapter) => {
  it('logs in, refreshes with rotation, retries fetch after a 401, and revokes at logout', async () => {
    for (const key of Object.keys(acme.calls) as Array<keyof typeof acme.calls>) acme.calls[key] = 0;
    const config = { baseUrl: BASE_URL, secret: 's'.repeat(40), providers: { acme: acmeProvider() } };
    const app = await adapter.start(createOAuth(config));
    // The same sessions, read by an app that considers every token due.
    const eager = await adapter.start(createOAuth({ ...config, refreshSkewSeconds: 7200 }));
    try {
      const agent = request.agent(app.server);
      const started = await agent.get('/auth/acme/login').expect(302);
      const callback = new URL(
        (await fetch(started.headers.location as string, { redirect: 'manual' })).headers.get('location') ?? '',
      );
      await agent.get(callback.pathname + callback.search).expect(302);
      const first = (await agent.get('/token/acme').expect(200)).body;
      expect(first.extras).toEqual({ workspace: 'w-42' });
      expect(first.idToken).toBeUndefined(); // nothing validated it: never handed out as claims
      expect(first.claims).toBeUndefined();
      expect(first.tokenType).toBe('Bearer');
      expect(first.expiresAt).toBeGreaterThan(Date.now() / 1000 + 3000);

      // The API drops the token early: fetch refreshes once and retries once.
      acme.access.delete(first.accessToken);
      const me = await agent.get(`/fetch/acme?url=${encodeURIComponent(`${origin}/api/me`)}`).expect(200);
      expect(me.body).toEqual({ status: 200, body: { name: 'Ada' } });
      expect(acme.calls.refresh).toBe(1);
      expect(acme.calls.api).toBe(2);

      // A body that can be read only once is never sent twice: the API's refusal comes back as it is.
      const { accessToken } = (await agent.get('/token/acme').expect(200)).body;
      acme.access.delete(accessToken);
      const streamed = await agent.get(`/fetch-stream/acme?url=${encodeURIComponent(`${origin}/api/me`)}`).expect(200);
      expect(streamed.body.status).toBe(401);
      expect(acme.calls.api).toBe(3);
      expect(acme.calls.refresh).toBe(1);
      const again = await agent.get(`/fetch/acme?url=${encodeURIComponent(`${origin}/api/me`)}`).expect(200);
      expect(again.body.status).toBe(200); // a replayable request refreshes and retries

      // Logout revokes with a DELETE carrying the bearer token.
      const cookie = (again.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
      await agent.post('/disconnect/acme').expect(204);
      expect(acme.calls.revoke).toBe(1);
      await agent.get('/token/acme').expect(401);

      // A refresh token the provider no longer knows ({fault: {reason: 'expired_renewal'}}): reauth_required.
      acme.renewals.clear();
      // Half an hour on, the refreshed token (an hour's) is due even for a skew larger than its life.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 1801_000, shouldAdvanceTime: true });
      const refused = await request(eager.server).get('/token/acme').set('cookie', cookie);
      vi.useRealTimers();
      expect(refused.status).toBe(401);
      expect(refused.body).toMatchObject({ error: 'reauth_required', provider_error: 'invalid_grant' });
      expect(refused.body).not.toHaveProperty('provider_error_description'); // the provider's words are the app's
      expect(acme.calls.refresh).toBe(3);
    } finally {
      await app.close();
      await eager.close();
    }
  });
});
