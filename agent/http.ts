import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { NodewardError } from '../shared/errors.ts';
import { createExpositionWriter, type Exposition, gzipExposition } from './exposition.ts';

export interface HttpDeps {
  /** Registries to expose, in order; read at each scrape so enabled modules can change. */
  registries: () => Registry[];
  /** Readiness body: `ready` plus whatever explains it. */
  readiness: () => { ready: boolean } & Record<string, unknown>;
}

/**
 * /healthz, /readyz and /metrics. Concurrent scrapes share one collection: a second Prometheus (or
 * a retry) arriving mid-scrape waits for the same result instead of reading /proc twice.
 */
export function createHttpServer(deps: HttpDeps): Server {
  const render = createExpositionWriter();
  let inflight: Promise<Exposition> | undefined;

  const collect = () => {
    inflight ??= render(deps.registries()).finally(() => {
      inflight = undefined;
    });
    return inflight;
  };

  const metrics = async (req: IncomingMessage, res: ServerResponse) => {
    const { body, contentType } = await collect();
    const headers: Record<string, string> = { 'content-type': contentType, vary: 'accept-encoding' };
    if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip' }).end(gzipExposition(body));
    } else {
      res.writeHead(200, headers).end(body);
    }
  };

  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const body = deps.readiness();
        res
          .writeHead(body.ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(`${JSON.stringify(body)}\n`);
        return;
      }
      case '/metrics':
        metrics(req, res).catch((err: unknown) => {
          res
            .writeHead(500, { 'content-type': 'text/plain' })
            .end(`collecting metrics failed: ${String(err)}\n`);
        });
        return;
      default:
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('not found: try /metrics, /healthz or /readyz\n');
    }
  });
}

/** Listens on "host:port"; a taken or foreign address is a clear HTTP_LISTEN error. */
export async function listen(server: Server, hostPort: string): Promise<AddressInfo> {
  const sep = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(sep + 1));
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new NodewardError(
          'HTTP_LISTEN',
          `cannot listen on ${hostPort} (http.listen): ${err.code ?? err.message}`,
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
