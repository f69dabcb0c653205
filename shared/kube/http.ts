import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * One authenticated GET against a Kubernetes endpoint (the kubelet's /pods, the API server's
 * lists and watches): bearer token from the service account (re-read on every request, since
 * projected tokens are rotated in place about hourly), the endpoint's CA, and an inactivity
 * timeout. Failures carry a low-cardinality reason for metrics.
 */

export interface Connection {
  /** Bearer token file; a missing file means no Authorization header. */
  tokenFile: string;
  /** CA bundle of the endpoint's serving certificate; a missing file means the system CAs. */
  caFile: string;
  insecureSkipVerify: boolean;
  /** Socket inactivity (connect, TLS, each read) before the request fails (ms). */
  timeout: number;
}

/** An API server: its base URL and how it is reached. */
export interface ApiServer extends Connection {
  /** e.g. https://10.96.0.1:443; a path (an authenticating proxy) is kept. */
  url: string;
}

/** `path` (e.g. api/v1/pods) under the API server's base URL, with query parameters. */
export function apiUrl(api: Pick<ApiServer, 'url'>, path: string, params: Record<string, string>): URL {
  // Relative, so that a base URL with a path (an authenticating proxy) keeps it.
  const base = api.url.endsWith('/') ? api.url : `${api.url}/`;
  const url = new URL(path, base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

/** Why a request failed: unreachable, timeout, unauthorized, http_<status>, gone, bad_json, tls, too_large, credentials. */
export class KubeError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeError';
    this.reason = reason;
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  if (file === '') return undefined;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KubeError('credentials', `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function socketReason(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (code.includes('CERT') || code.includes('SELF_SIGNED') || code.startsWith('ERR_TLS')) return 'tls';
  return 'unreachable';
}

function statusReason(status: number): string {
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 410) return 'gone';
  return `http_${status}`;
}

/**
 * Opens the GET and resolves with the response once its status is 200; any other status rejects
 * (the body is drained). `signal` aborts it at any point, the open stream included. The inactivity
 * timeout stays armed on the socket: a watch that goes silent longer than it fails with `timeout`.
 */
export async function openGet(
  url: URL,
  conn: Connection,
  what: string,
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  const token = (await readOptional(conn.tokenFile))?.trim();
  const ca = url.protocol === 'https:' ? await readOptional(conn.caFile) : undefined;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const common = { method: 'GET', headers, timeout: conn.timeout, ...(signal ? { signal } : {}) };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, {
            ...common,
            rejectUnauthorized: !conn.insecureSkipVerify,
            ...(ca ? { ca } : {}),
          })
        : httpRequest(url, common);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        resolve(res);
        return;
      }
      res.resume();
      reject(new KubeError(statusReason(status), `${what} ${url.href} answered ${status}`));
    });
    req.on('timeout', () =>
      req.destroy(new KubeError('timeout', `${what} ${url.href}: no answer within ${conn.timeout} ms`)),
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err instanceof KubeError
          ? err
          : err.name === 'AbortError'
            ? new KubeError('aborted', `${what} ${url.href}: stopped`, { cause: err })
            : new KubeError(socketReason(err), `${what} ${url.href}: ${err.message}`, { cause: err }),
      ),
    );
    req.end();
  });
}

/** Responses above this are refused: 110 pods take ≈ 1–2 MB. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The whole body of an opened response, as JSON. */
export async function readJson(res: IncomingMessage, url: URL, what: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy();
        throw new KubeError('too_large', `${what} ${url.href} sent more than ${MAX_BODY_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof KubeError) throw err;
    throw new KubeError(
      (err as Error).message.includes('no answer') ? 'timeout' : 'unreachable',
      `${what} ${url.href}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    return JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
  } catch (err) {
    throw new KubeError('bad_json', `${what} ${url.href}: not JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
}
