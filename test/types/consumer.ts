/**
 * A user's app, type-checked against the built package (dist/, through package.json `exports`),
 * not the sources: `req.oauth` and `ctx.oauth` must type-check with no casts.
 */
import express from 'express';
import Koa from 'koa';
import { OAuthError, type TokenSet } from 'oauth-middleware';
import { oauthMiddleware as expressOAuth, requireToken as expressGuard } from 'oauth-middleware/express';
import { oauthMiddleware as koaOAuth } from 'oauth-middleware/koa';
import { oidc, pipedrive } from 'oauth-middleware/providers';
import { type Emulator, startPipedriveEmulator } from 'oauth-middleware/testing';

const config = {
  baseUrl: 'https://app.example.com',
  secret: 'x'.repeat(32),
  providers: {
    pipedrive: pipedrive({ clientId: 'id', clientSecret: 's' }),
    op: oidc({ issuer: 'https://op.example', clientId: 'id', clientSecret: 's' }),
  },
};

const app = express();
app.use(expressOAuth(config));
app.get('/deals', expressGuard('pipedrive'), async (req, res) => {
  const token: TokenSet = await req.oauth.getToken('pipedrive');
  const response: Response = await req.oauth.fetch('pipedrive', `${String(token.extras.api_domain)}/api/v1/deals`);
  res.json({ connected: await req.oauth.isConnected('op'), status: response.status });
});

const koa = new Koa();
koa.use(koaOAuth(config));
koa.use(async (ctx) => {
  try {
    ctx.body = (await ctx.oauth.getToken('op')).claims;
  } catch (err) {
    if (err instanceof OAuthError && err.code === 'reauth_required') ctx.redirect('/auth/op/login');
    else throw err;
  }
});

/** The README's "test your app against strict emulators", as a user writes it. */
export async function againstEmulator(): Promise<number> {
  const emulator: Emulator = await startPipedriveEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/pipedrive/callback' });
  const provider = pipedrive({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints });
  emulator.accessTokenTtl = 30;
  const issued = emulator.issued.at(-1)?.accessToken;
  await emulator.close();
  return provider.scopes.length + emulator.counts.refresh + (issued?.length ?? 0);
}
