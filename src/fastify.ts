/**
 * Fastify 5 adapter: translates requests and replies, nothing else.
 */
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import {
  createOAuth,
  type HttpRequest,
  type OAuth,
  type OAuthConfig,
  type OAuthContext,
  type OAuthRequest,
  OAuthError,
  type ResponseCookies,
  type RouteResult,
  renderError,
} from './adapter.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Tokens of this request's session. Set by the `oauthPlugin`. */
    oauth: OAuthContext;
  }
}

// The request as the core saw it, for `requireToken` and the login routes: translated once.
const SCOPE = Symbol('oauth-middleware.request');
type WithScope = FastifyRequest & { [SCOPE]?: OAuthRequest };

/**
 * A plugin that sets `request.oauth` on every request of the app registering it and serves the
 * login routes (`/auth/:provider/login`, `/callback`, `/logout`) below the prefix it is registered
 * with. Give `oauthErrorHandler` to `setErrorHandler`, or call it from yours, to render `OAuthError`s.
 *
 * @example
 * ```ts
 * await app.register(oauthPlugin({ baseUrl, secret, providers: { google: oidc({ ... }) } }));
 * app.get('/me', { preHandler: requireToken('google') }, async (request) => (await request.oauth.getToken('google')).claims);
 * app.setErrorHandler(oauthErrorHandler);
 * ```
 */
export function oauthPlugin(config: OAuthConfig | OAuth): FastifyPluginAsync<{ prefix?: string }> {
  const oauth = 'handle' in config ? config : createOAuth(config);
  const plugin: FastifyPluginAsync<{ prefix?: string }> = async (app, options) => {
    // `request.oauth` reaches the whole app registering us (fastify-plugin's `skip-override`, set
    // below), so Fastify applies no prefix of ours: the login routes take it here.
    const own = options.prefix ?? '';
    const mountPath = `${app.prefix}${own}`;
    app.decorateRequest('oauth', null as unknown as OAuthContext);
    app.addHook('onRequest', async (request, reply) => {
      const scope = oauth.request(toHttpRequest(request, mountPath), replyCookies(reply));
      request.oauth = scope.context;
      (request as WithScope)[SCOPE] = scope;
    });
    await app.register(async (routes) => {
      // The login routes' errors are ours to render; any other goes on to the app's error handler.
      routes.setErrorHandler(oauthErrorHandler);
      // The logout form posts urlencoded: a parser of the app's own wins, this one stays in here.
      // Any other body is no business of these routes (as Express's parsers leave it), never a 415.
      if (!routes.hasContentTypeParser('application/x-www-form-urlencoded')) {
        routes.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
          done(null, Object.fromEntries(new URLSearchParams(body as string)));
        });
      }
      routes.addContentTypeParser('*', { parseAs: 'string' }, (_request, _body, done) => done(null, undefined));
      // An empty Content-Type has no parser at all (a 415): read as none, which the one above takes.
      routes.addHook('onRequest', async (request) => {
        if (request.headers['content-type']?.trim() === '') delete request.headers['content-type'];
      });
      routes.route({
        method: ['GET', 'POST'],
        // A wildcard, not `/:provider/:action`: the core matches the path, and Fastify's parameters
        // stop at 100 characters (a 414 where the other adapters answer unknown_provider).
        url: `${own}${oauth.config.prefix}/*`,
        handler: async (request, reply) => {
          const result = await scopeOf(request).route();
          return result ? send(reply, result) : reply.callNotFound();
        },
      });
    });
  };
  // As fastify-plugin marks a plugin: its decorations and hooks reach the app that registers it.
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'oauth-middleware' });
}

/**
 * A `preHandler` letting the request through when a token for `provider` can be had (refreshing it
 * if due). Otherwise browsers are redirected to the login route with `returnTo`, other clients get 401 JSON.
 */
export function requireToken(provider: string): preHandlerAsyncHookHandler {
  return async function requireToken(request, reply) {
    const result = await scopeOf(request).guard(provider);
    if (result) await send(reply, result);
  };
}

/** Renders `OAuthError`s: a small page for browsers, JSON for other clients. Other errors are thrown on to Fastify's. */
export function oauthErrorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const rendered = renderError(error, toHttpRequest(request, ''));
  if (!rendered) throw error;
  return reply.code(rendered.status).type(rendered.contentType).send(rendered.body);
}

function scopeOf(request: FastifyRequest): OAuthRequest {
  const scope = (request as WithScope)[SCOPE];
  if (!scope) throw new OAuthError('config_invalid', 'requireToken() needs the oauthPlugin registered before it.');
  return scope;
}

function toHttpRequest(request: FastifyRequest, mountPath: string): HttpRequest {
  return {
    method: request.method,
    url: request.url,
    headers: request.headers,
    // Read when asked: the hook that makes this runs before Fastify has parsed the body.
    get body() {
      return request.body;
    },
    native: request,
    mountPath,
  };
}

function replyCookies(reply: FastifyReply): ResponseCookies {
  return {
    getSetCookie() {
      const current = reply.getHeader('set-cookie');
      return current === undefined ? [] : Array.isArray(current) ? current.map(String) : [String(current)];
    },
    setSetCookie(values) {
      // Fastify appends to Set-Cookie: the list is replaced by removing it first.
      reply.removeHeader('set-cookie');
      if (values.length > 0) reply.header('set-cookie', values);
    },
    writable: () => !reply.sent,
  };
}

function send(reply: FastifyReply, result: RouteResult): FastifyReply {
  reply.code(result.status);
  if (result.location !== undefined) reply.header('location', result.location);
  return result.json === undefined ? reply.send('') : reply.send(result.json);
}
