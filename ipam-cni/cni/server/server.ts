import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { asNodewardError, CNI, cniCodeOf } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import { IpError } from '../../net/exec.ts';
import type { CniMetrics } from '../metrics.ts';
import type { CniRequest, CniResponse } from '../protocol.ts';
import { CniError } from '../spec.ts';
import type { CniHandlers } from './handlers.ts';

/**
 * The agent's end of the shim protocol: a unix socket only root can reach (socket 0600 in a 0700
 * directory), one JSON request line per connection, one JSON answer.
 */

const MAX_REQUEST = 1 << 20;

/** Any failure as the error the runtime will see. */
export function toCniFailure(err: unknown): Extract<CniResponse, { ok: false }> {
  if (err instanceof CniError) {
    return { ok: false, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) };
  }
  if (err instanceof IpError) return { ok: false, code: CNI.netSetup, msg: err.message };
  const e = asNodewardError(err);
  return { ok: false, code: cniCodeOf(e), msg: e.message, details: e.code };
}

export interface CniServer {
  readonly socket: string;
  close(): Promise<void>;
}

export async function startCniServer(options: {
  socket: string;
  handlers: CniHandlers;
  metrics?: CniMetrics | undefined;
  log?: Logger | undefined;
}): Promise<CniServer> {
  const { socket, handlers, metrics, log } = options;
  const dir = dirname(socket);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  try {
    unlinkSync(socket); // left by a previous run that died
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const serve = async (line: string): Promise<CniResponse> => {
    let req: CniRequest;
    try {
      req = JSON.parse(line) as CniRequest;
    } catch {
      return { ok: false, code: CNI.decode, msg: 'the request from the shim is not JSON' };
    }
    const started = process.hrtime.bigint();
    let response: CniResponse;
    try {
      const result = await handlers.handle(req);
      response = result === undefined ? { ok: true } : { ok: true, result };
    } catch (err) {
      response = toCniFailure(err);
      log?.warn(
        { verb: req.command, containerID: req.containerID, code: response.code, msg: response.msg },
        'cni: request failed',
      );
    }
    metrics?.requests.inc({ verb: req.command, code: response.ok ? '0' : String(response.code) });
    if (req.command === 'ADD') metrics?.addSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return response;
  };
  const onConnection = (conn: Socket) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let answered = false;
    const answer = (text: string) => {
      if (answered) return;
      answered = true;
      void serve(text).then((r) => conn.end(`${JSON.stringify(r)}\n`));
    };
    conn.on('data', (b: Buffer) => {
      chunks.push(b);
      size += b.length;
      if (size > MAX_REQUEST) conn.destroy();
      else if (b.includes(10)) answer(Buffer.concat(chunks).toString('utf8'));
    });
    conn.on('end', () => answer(Buffer.concat(chunks).toString('utf8')));
    conn.on('error', () => {});
  };
  // allowHalfOpen: the shim ends its side after the request; the answer still has to go out.
  const server: Server = createServer({ allowHalfOpen: true }, onConnection);
  // umask for the socket file itself: created 0600 from the start, not chmod'ed after.
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  chmodSync(socket, 0o600);
  return {
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}
