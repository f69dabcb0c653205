import { connect } from 'node:net';
import type { CniRequest, CniResponse } from '../protocol.ts';

/** Why the agent could not answer: it is not there, or it did not answer in time. */
export class AgentUnreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentUnreachable';
  }
}

/** Sends one request to the agent's socket and resolves with its answer. */
export function sendToAgent(socket: string, request: CniRequest, timeoutMs: number): Promise<CniResponse> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.destroy();
      fn();
    };
    const timer = setTimeout(
      () =>
        done(() =>
          reject(new AgentUnreachable(`the agent did not answer on ${socket} within ${timeoutMs} ms`)),
        ),
      timeoutMs,
    );
    conn.on('connect', () => conn.end(`${JSON.stringify(request)}\n`));
    conn.on('data', (b: Buffer) => chunks.push(b));
    conn.on('error', (err) =>
      done(() =>
        reject(new AgentUnreachable(`cannot reach the agent on ${socket}: ${err.message}`, { cause: err })),
      ),
    );
    conn.on('end', () =>
      done(() => {
        const text = Buffer.concat(chunks).toString('utf8').trim();
        try {
          resolve(JSON.parse(text) as CniResponse);
        } catch (err) {
          reject(
            new AgentUnreachable(`the agent's answer on ${socket} is not JSON: ${text.slice(0, 200)}`, {
              cause: err,
            }),
          );
        }
      }),
    );
  });
}
