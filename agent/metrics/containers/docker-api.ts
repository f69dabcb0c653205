import { type IncomingMessage, request } from 'node:http';

/**
 * The few Docker Engine API calls the container source makes (list, inspect, events), over the
 * unix socket with node:http. Not dockerode: loading it (with docker-modem, ssh2 and their
 * dependencies) cost ≈ 20 MiB of idle RSS here (bench/metrics, idle_rss_mib 105–108 MiB against
 * ≈ 84 without it), for three GET requests. Paths carry no API version: dockerd answers
 * unversioned requests with its own current version, as dockerode's default did.
 */

/** An answer other than 2xx; statusCode 404 means the container does not exist (any more). */
export type DockerApiError = Error & { readonly statusCode: number };

/** GET /containers/json: the fields we read. */
export interface DockerContainerSummary {
  readonly Id: string;
  readonly Labels?: Record<string, string> | null;
}

/** GET /containers/{id}/json: the fields we read. */
export interface DockerInspect {
  readonly Id: string;
  readonly Name: string;
  readonly State: { readonly Running: boolean; readonly Pid: number; readonly StartedAt: string };
  readonly HostConfig: { readonly CgroupParent?: string; readonly NetworkMode?: string };
  readonly Config: { readonly Image: string; readonly Labels?: Record<string, string> | null };
}

export interface DockerApi {
  /** One GET answered with JSON; rejects with DockerApiError on a non-2xx status. */
  json<T>(path: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<T>;
  /** A streaming GET (the events stream): the response, once its status is 2xx. */
  stream(path: string, signal: AbortSignal): Promise<IncomingMessage>;
}

/** `?filters=<json>` as the Engine API takes it. */
export const filtersQuery = (filters: Record<string, readonly string[]>) =>
  `filters=${encodeURIComponent(JSON.stringify(filters))}`;

export function dockerApi(socketPath: string): DockerApi {
  const get = (path: string, signal: AbortSignal | undefined, timeoutMs: number | undefined) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ socketPath, path, method: 'GET', headers: { host: 'docker' }, signal }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        res.on('end', () => {
          let message = body.trim();
          try {
            message = (JSON.parse(body) as { message?: string }).message ?? message;
          } catch {
            // Not JSON: keep the text.
          }
          reject(
            Object.assign(new Error(`docker GET ${path}: ${status} ${message}`), { statusCode: status }),
          );
        });
        res.on('error', reject);
      });
      if (timeoutMs !== undefined)
        req.setTimeout(timeoutMs, () =>
          req.destroy(new Error(`docker GET ${path}: no answer in ${timeoutMs} ms`)),
        );
      req.on('error', reject);
      req.end();
    });

  return {
    async json<T>(path: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
      const res = await get(path, opts.signal, opts.timeoutMs ?? 30_000);
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
    },
    stream: (path, signal) => get(path, signal, undefined),
  };
}
