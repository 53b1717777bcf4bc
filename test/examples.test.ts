/** The starters people copy must work as they are: sign in, see claims and userinfo, sign out. */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { main as expressExample } from '../examples/express-basic/server.js';
import { main as redisExample } from '../examples/express-redis/server.js';
import { main as koaExample } from '../examples/koa-basic/server.js';
import { completeLogin } from './support/authorization-server.js';
import { uniquePrefix } from './support/redis.js';

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

describe('examples/express-redis', () => {
  it('serves one signed-in session from two instances behind the proxy', async () => {
    const example = await redisExample({ port: 0, idpPort: 0, redisPrefix: uniquePrefix('example') });
    try {
      const agent = request.agent(example.url);
      const guarded = await agent.get('/profile').set('accept', 'text/html').expect(302);
      const login = await agent.get(guarded.headers.location as string).expect(302);
      const callback = await completeLogin(login.headers.location as string, { user: 'linus' });
      await agent
        .get(callback.pathname + callback.search)
        .expect(302)
        .expect('location', '/profile');
      const served = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const profile = await agent.get('/profile').set('accept', 'text/html').expect(200);
        expect(profile.text).toContain('Hello <b>linus</b>');
        served.add(/Served by instance (\w)/.exec(profile.text)?.[1] ?? '?');
      }
      expect([...served].sort()).toEqual(['A', 'B']);
    } finally {
      await example.close();
    }
  }, 60_000);
});
