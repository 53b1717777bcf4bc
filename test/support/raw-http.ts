/**
 * One HTTP request sent as written: the path byte for byte (no normalisation of dot segments,
 * slashes or percent-encoding, as supertest and fetch would do) and headers in the order given,
 * repeated where repeated. For the hostile-input table and the fuzzer.
 */
import { type Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';

export interface Reply {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

export interface RawRequest {
  method: string;
  path: string;
  /** Name, value, name, value, ... (`Host` is set from `base`). */
  headers: string[];
  body?: string | undefined;
  timeoutMs: number;
}

export function sendAsWritten(base: string, request: RawRequest, agent: Agent): Promise<Reply> {
  const { hostname, port, host } = new URL(base);
  const headers = ['Host', host, ...request.headers];
  if (request.body !== undefined) headers.push('Content-Length', String(Buffer.byteLength(request.body)));
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: hostname, port: Number(port), method: request.method, path: request.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.setTimeout(request.timeoutMs, () =>
      outgoing.destroy(new Error(`no answer to ${request.method} ${request.path} in ${request.timeoutMs} ms`)),
    );
    outgoing.end(request.body);
  });
}
