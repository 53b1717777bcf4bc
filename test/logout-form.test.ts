/**
 * The logout form's own `returnTo`, read from its body as each framework hands it over (Express's
 * urlencoded parser, Koa's none, Fastify's parser, a web-standard body read by the adapter), urlencoded
 * or JSON; a body of another type is no returnTo. A browser that is not signed in: nothing to revoke.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createOAuth } from '../src/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { BASE_URL, startAuthorizationServer, type TestServer, testProvider } from './support/authorization-server.js';

let op: TestServer;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
});
afterAll(async () => {
  await op?.close();
});

// Koa reads no body without a body parser of the app's own: its logout takes the query's returnTo only.
describe.each(adapters.filter((adapter) => !adapter.name.startsWith('koa')))('$name', (adapter) => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await adapter.start(
      createOAuth({
        baseUrl: BASE_URL,
        secret: 'a-test-secret-that-is-long-enough-0123456789',
        providers: { op: testProvider(op) },
      }),
    );
  });
  afterAll(async () => {
    await app?.close();
  });

  const logout = () => request(app.server).post('/auth/op/logout').set('accept', 'text/html');

  it('follows a safe returnTo posted as a form', async () => {
    await logout().type('form').send('returnTo=%2Fafter%3Ftab%3D1').expect(302).expect('location', '/after?tab=1');
  });

  it.skipIf(adapter.name.startsWith('express'))('follows a safe returnTo posted as JSON', async () => {
    await logout().type('json').send({ returnTo: '/after' }).expect(302).expect('location', '/after');
  });

  it('reads no returnTo from a body of another type', async () => {
    await logout().type('text/plain').send('returnTo=%2Fafter').expect(302).expect('location', '/');
  });
});
