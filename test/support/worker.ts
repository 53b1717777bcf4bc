/**
 * One app instance in its own process, for the multi-instance tests: Express, the Redis store,
 * and one provider, configured through WORKER_CONFIG. Reports its port to the parent, then serves
 * until killed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import { oauthErrorHandler, oauthMiddleware } from '../../src/express.js';
import { calcomPlatform, oidc } from '../../src/providers/index.js';
import { redisStore } from '../../src/stores/redis.js';

export interface WorkerConfig {
  baseUrl: string;
  secret: string;
  redisUrl: string;
  prefix: string;
  provider:
    | { kind: 'oidc'; name: string; issuer: string; clientId: string; clientSecret: string }
    | { kind: 'calcom-platform'; name: string; clientId: string; clientSecret: string; endpoints: Record<string, string> };
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as WorkerConfig;
const { provider } = config;
const definition =
  provider.kind === 'oidc'
    ? oidc({
        issuer: provider.issuer,
        clientId: provider.clientId,
        clientSecret: provider.clientSecret,
        scopes: ['openid', 'offline_access'],
        authorizationParams: { prompt: 'consent' },
      })
    : calcomPlatform({ clientId: provider.clientId, clientSecret: provider.clientSecret, endpoints: provider.endpoints });

const client = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
const app = express();
app.use(
  oauthMiddleware({
    baseUrl: config.baseUrl,
    secret: config.secret,
    store: redisStore({ client, prefix: config.prefix }),
    providers: { [provider.name]: definition },
  }),
);
app.get('/token/:provider', async (req, res) => {
  const token = await req.oauth.getToken(req.params.provider);
  res.json({ accessToken: token.accessToken, pid: process.pid });
});
app.use(oauthErrorHandler());

const server = createServer(app);
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
