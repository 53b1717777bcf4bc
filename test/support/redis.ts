/**
 * Redis for the tests: the machine's own (127.0.0.1:6379, started by .ci/run when missing), and
 * private redis-server processes on free ports for tests that stop Redis on purpose. The
 * machine's own Redis is never stopped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A client that fails fast while Redis is down, instead of queueing commands forever. */
export function redisClient(url = REDIS_URL): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 1000 });
  client.on('error', () => undefined); // outages are what some tests are about; the store reports them
  return client;
}

/**
 * Resolves once the client is connected. Its commands fail fast while it is not (no offline queue),
 * so a test that runs alone (a filtered run, a mutation run's covering tests) waits for this first.
 */
export async function ready(client: Redis): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis not ready after 5 s (${client.status})`)), 5000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** This test run's keys all start with this (set by the global setup, inherited by workers). */
export function runPrefix(): string {
  return `test:${process.env.OAUTH_TEST_RUN ?? 'adhoc'}:`;
}

/** A fresh key prefix, so tests sharing one Redis never see each other's keys. */
export function uniquePrefix(name: string): string {
  return `${runPrefix()}${name}:${process.pid}:${Math.random().toString(36).slice(2)}:`;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A private redis-server with an append-only file, so that its data survives a stop and a start. */
export async function privateRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'oauth-redis-'));
  let child: ChildProcess | undefined;
  let frozen = false;

  async function start() {
    frozen = false;
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''],
      {
        stdio: 'ignore',
      },
    );
    const deadline = Date.now() + 5000;
    for (;;) {
      const probe = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        probe.disconnect();
      }
    }
  }

  /** Ends this server (and only this one) by its pid, and waits until it is gone. */
  async function end(signal: NodeJS.Signals) {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill(signal);
    });
  }

  /** Stops this server; SIGTERM flushes the append-only file first (a frozen one is killed). */
  const stop = () => end(frozen ? 'SIGKILL' : 'SIGTERM');
  /** Kills this server with SIGKILL: Redis dying, nothing flushed, its connections reset. */
  const kill = () => end('SIGKILL');
  /**
   * Freezes this server (SIGSTOP): connections stay open and nothing answers, as with a host that
   * vanished from the network. `stop`, `kill` and `close` end it.
   */
  function freeze() {
    frozen = true;
    child?.kill('SIGSTOP');
  }

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    kill,
    freeze,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
