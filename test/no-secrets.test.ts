/**
 * Secrets and tokens never reach an error: not its message, not its JSON, not what a logger
 * printing the whole error (with its cause chain) would show.
 */
import { inspect } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, OAuthError } from '../src/index.js';
import { adapters } from './support/apps.js';
import {
  BASE_URL,
  CLIENT_SECRET,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

let op: TestServer;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
});
afterAll(async () => {
  await op?.close();
});

describe('errors carry no secret', () => {
  it('keeps codes, tokens and the client secret out of every error and response', async () => {
    const errors: unknown[] = [];
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 's'.repeat(40),
      providers: {
        op: testProvider(op),
      },
      hooks: { onError: (e) => errors.push(e) },
    });
    const app = await adapters[0]!.start(oauth);
    const secrets = [CLIENT_SECRET];
    const bodies: string[] = [];
    try {
      const agent = request.agent(app.server);
      // A code the provider refuses (altered): provider_error from the token endpoint.
      const started = await agent.get('/auth/op/login').expect(302);
      const callback = await completeLogin(started.headers.location as string);
      const code = callback.searchParams.get('code') as string;
      secrets.push(code);
      callback.searchParams.set('code', `${code}x`);
      secrets.push(`${code}x`);
      const refused = await agent.get(callback.pathname + callback.search);
      expect(refused.status).toBe(502);
      expect(refused.body).toMatchObject({ error: 'provider_error', provider_error: 'invalid_grant' });
      bodies.push(refused.text);

      // A real login, then a refresh refused by the provider and one it cannot answer.
      op.accessTokenTtl = 30;
      const again = await agent.get('/auth/op/login').expect(302);
      const good = await completeLogin(again.headers.location as string);
      secrets.push(good.searchParams.get('code') as string);
      await agent.get(good.pathname + good.search).expect(302);
      const token = (await agent.get('/token/op').expect(200)).body; // refreshed once
      secrets.push(token.accessToken, token.idToken);
      op.failTokenEndpoint = 503;
      await agent.get('/token/op').expect(200); // provider down: the still-valid token, and an error reported
      op.failTokenEndpoint = undefined;
      await op.revokeGrant(token.accessToken);
      const reauth = await agent.get('/token/op').expect(401);
      expect(reauth.body.error).toBe('reauth_required');
      bodies.push(reauth.text);
    } finally {
      op.reset();
      await app.close();
    }
    expect(errors.map((e) => (e as OAuthError).code)).toEqual(expect.arrayContaining(['provider_error', 'provider_unavailable']));
    for (const error of errors) {
      expect(error).toBeInstanceOf(OAuthError);
      const printed = [String(error), JSON.stringify(error), inspect(error, { depth: 6, showHidden: true })].join('\n');
      for (const secret of secrets) expect(printed).not.toContain(secret);
    }
    for (const body of bodies) for (const secret of secrets) expect(body).not.toContain(secret);
  });
});
