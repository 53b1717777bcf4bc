/**
 * Listening for the starters, and starting them from the command line: a port that is already
 * taken is told in one sentence with the variable that moves it, not as a stack trace.
 */
import type { Server } from 'node:http';
import { relative } from 'node:path';

/** A port the starter could not listen on, with the environment variable that chooses another. */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    readonly variable: string,
  ) {
    super(`Port ${port} is already in use on 127.0.0.1.`);
    this.name = 'PortTakenError';
  }
}

/**
 * Listens on 127.0.0.1:`port` (0 picks a free one). A taken port rejects with `PortTakenError`
 * naming `variable`, the environment variable a user sets to choose another port.
 */
export function listen(server: Server, port: number, variable: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      server.off('listening', listening);
      reject(err.code === 'EADDRINUSE' ? new PortTakenError(port, variable) : err);
    };
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen(port, '127.0.0.1');
  });
}

/**
 * Runs a starter from the command line. A taken port prints what to do and exits with 1; any other
 * failure is thrown as it is.
 */
export async function runFromCommandLine(start: () => Promise<string>): Promise<void> {
  try {
    console.log(await start());
  } catch (err) {
    if (!(err instanceof PortTakenError)) throw err;
    console.error(`${err.message}\nStop what runs there, or choose another port: ${err.variable}=${err.port + 1} ${command()}`);
    process.exit(1);
  }
}

/** How this starter was started, to repeat it: `npm start`, `npm run start:koa`, or the file. */
function command(): string {
  const script = process.env.npm_lifecycle_event;
  if (script === 'start') return 'npm start';
  if (script?.startsWith('start:')) return `npm run ${script}`;
  return `npx tsx ${relative(process.cwd(), process.argv[1] ?? '')}`;
}
