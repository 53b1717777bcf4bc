/** The starters people copy must work as they are: sign in, see claims and userinfo, sign out. */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { main as expressExample } from '../examples/express-basic/server.js';
import { main as koaExample } from '../examples/koa-basic/server.js';
import { completeLogin } from './support/authorization-server.js';

describe.each([
  ['express-basic', expressExample],
  ['koa-basic', koaExample],
])('examples/%s', (_name, main) => {
  it('signs in with the demo provider, shows claims and userinfo, and signs out', async () => {
    const example = await main({ port: 0, idpPort: 0 });
    try {
      const agent = request.agent(example.url);
      await agent.get('/').expect(200, /Sign in with the demo provider/);
      const guarded = await agent.get('/profile').set('accept', 'text/html').expect(302);
      const login = await agent.get(guarded.headers.location as string).expect(302);
      const callback = await completeLogin(login.headers.location as string, { user: 'grace' });
      await agent
        .get(callback.pathname + callback.search)
        .expect(302)
        .expect('location', '/profile');
      const profile = await agent.get('/profile').set('accept', 'text/html').expect(200);
      expect(profile.text).toContain('"sub": "grace"');
      expect(profile.text).toContain('grace@example.test'); // from userinfo, called with the access token
      await agent.post('/auth/demo/logout?returnTo=/').set('accept', 'text/html').expect(302).expect('location', '/');
      await agent.get('/').expect(200, /Sign in with the demo provider/);
    } finally {
      await example.close();
    }
  });
});
