/**
 * Two app instances, in two processes, behind a small round-robin proxy, sharing one Redis:
 * what running several instances behind a load balancer looks like. Run with `npm run start:redis`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startDemoIdp } from '../demo-idp/index.js';
import { listen, runFromCommandLine } from '../listen.js';
import type { InstanceOptions } from './instance.js';

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));

export async function main({
  port = 3000,
  idpPort = 4000,
  redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  redisPrefix = undefined as string | undefined,
} = {}) {
  // The "load balancer": listen first, the public URL (and the redirect URI) needs its port.
  const backends: number[] = [];
  let next = 0;
  const proxy = createServer((req, res) => {
    const target = backends[next++ % backends.length];
    const upstream = request(
      { host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end('instance unavailable'));
    req.pipe(upstream);
  });
  await listen(proxy, port, 'PORT');
  const baseUrl = `http://localhost:${(proxy.address() as AddressInfo).port}`;

  const idp = await startDemoIdp({
    port: idpPort,
    clients: [{ client_id: 'demo-app', client_secret: 'demo-app-secret', redirect_uris: [`${baseUrl}/auth/demo/callback`] }],
  });

  // Every instance needs the same secret: sessions sealed by one are read by the other.
  const secret = process.env.OAUTH_SECRET ?? randomBytes(32).toString('base64url');
  const children: ChildProcess[] = [];
  for (const name of ['A', 'B']) {
    const options: InstanceOptions = { name, baseUrl, secret, issuer: idp.issuer, userinfo: idp.userinfo, redisUrl, redisPrefix };
    const child = fork(INSTANCE, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, INSTANCE_OPTIONS: JSON.stringify(options) },
    });
    children.push(child);
    backends.push(await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port))));
  }

  return {
    url: baseUrl,
    async close() {
      for (const child of children) child.disconnect();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
      await idp.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runFromCommandLine(async () => {
    const { url } = await main({ port: Number(process.env.PORT ?? 3000), idpPort: Number(process.env.IDP_PORT ?? 4000) });
    return `Two instances behind ${url} (round robin), sharing Redis: open ${url}`;
  });
}
