import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { V1PodList } from './pod.ts';

/**
 * One GET of the kubelet's `/pods`: node-local, no API-server load. The service-account token is
 * read on every request, since projected tokens are rotated in place (about hourly).
 */

export interface KubeletOptions {
  /** https://127.0.0.1:10250/pods on a node; http:// for the read-only port or a test. */
  url: string;
  /** Bearer token file; a missing file means no Authorization header. */
  tokenFile: string;
  /** CA bundle of the kubelet's serving certificate; a missing file means the system CAs. */
  caFile: string;
  insecureSkipVerify: boolean;
  /** Socket inactivity (connect, TLS, each read) before the request fails (ms). */
  timeout: number;
}

/** Why a fetch failed, low-cardinality (for metrics): unreachable, timeout, unauthorized, http_<status>, bad_json, tls. */
export class KubeletError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeletError';
    this.reason = reason;
  }
}

/** Responses above this are refused: 110 pods take ≈ 1–2 MB. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

async function readOptional(file: string): Promise<string | undefined> {
  if (file === '') return undefined;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KubeletError('credentials', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function tlsReason(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (code === 'ETIMEDOUT' || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EHOSTUNREACH')
    return 'unreachable';
  if (code.includes('CERT') || code.includes('SELF_SIGNED') || code.startsWith('ERR_TLS')) return 'tls';
  return 'unreachable';
}

export async function fetchPodList(options: KubeletOptions): Promise<V1PodList> {
  const url = new URL(options.url);
  const token = (await readOptional(options.tokenFile))?.trim();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  const body = await new Promise<Buffer>((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        const reason = status === 401 || status === 403 ? 'unauthorized' : `http_${status}`;
        reject(new KubeletError(reason, `kubelet ${url.href} answered ${status}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy(
            new KubeletError('too_large', `kubelet ${url.href} sent more than ${MAX_BODY_BYTES} bytes`),
          );
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks, size)));
      res.on('error', reject);
    };
    const common = { method: 'GET', headers, timeout: options.timeout };
    let req: ReturnType<typeof httpRequest>;
    if (url.protocol === 'https:') {
      readOptional(options.caFile).then((ca) => {
        req = httpsRequest(
          url,
          { ...common, rejectUnauthorized: !options.insecureSkipVerify, ...(ca ? { ca } : {}) },
          onResponse,
        );
        wire(req);
      }, reject);
    } else {
      req = httpRequest(url, common, onResponse);
      wire(req);
    }
    function wire(r: ReturnType<typeof httpRequest>) {
      r.on('timeout', () =>
        r.destroy(new KubeletError('timeout', `kubelet ${url.href}: no answer within ${options.timeout} ms`)),
      );
      r.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          err instanceof KubeletError
            ? err
            : new KubeletError(tlsReason(err), `kubelet ${url.href}: ${err.message}`, { cause: err }),
        ),
      );
      r.end();
    }
  });
  let list: unknown;
  try {
    list = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new KubeletError('bad_json', `kubelet ${url.href}: not JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (typeof list !== 'object' || list === null || !Array.isArray((list as V1PodList).items))
    throw new KubeletError('bad_json', `kubelet ${url.href}: not a PodList (no items array)`);
  return list as V1PodList;
}
