/** Starts app instances as separate processes (node:child_process fork), for multi-instance tests. */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerConfig } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export interface Workers {
  urls: string[];
  stop(): Promise<void>;
}

export async function startWorkers(count: number, config: WorkerConfig): Promise<Workers> {
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
  };
  try {
    const urls = await Promise.all(
      Array.from({ length: count }, () => {
        const child = fork(WORKER, [], {
          execArgv: ['--import', 'tsx'],
          env: { ...process.env, WORKER_CONFIG: JSON.stringify(config) },
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        });
        children.push(child);
        return new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('worker did not start in 20 s')), 20_000);
          child.once('message', (message: { port: number }) => {
            clearTimeout(timer);
            resolve(`http://127.0.0.1:${message.port}`);
          });
          child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
        });
      }),
    );
    return { urls, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
