import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { MetricsConfig } from '../../../shared/config/index.ts';

export type AlertmanagerConfig = MetricsConfig['alerts']['alertmanagers'][number];

export interface Answer {
  readonly status: number;
  /** The start of the body, for error messages. */
  readonly text: string;
}

const readIf = (file: string) => (file === '' ? undefined : readFile(file));

/**
 * One POST of a JSON body to an Alertmanager, with its headers and TLS settings. node:https rather
 * than fetch: fetch takes no CA or client certificate per request. Certificate files are read at
 * each call, so a renewed certificate (cert-manager, a rotated Secret) is used without a restart.
 */
export async function postJson(
  am: AlertmanagerConfig,
  url: string,
  body: string,
  timeout: number,
  signal?: AbortSignal,
): Promise<Answer> {
  const { tls } = am;
  const [ca, cert, key] = await Promise.all([readIf(tls.caFile), readIf(tls.certFile), readIf(tls.keyFile)]);
  const target = new URL(url);
  const deadline = AbortSignal.timeout(timeout);
  const options = {
    method: 'POST',
    headers: {
      ...am.headers,
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      'User-Agent': 'nodeward',
    },
    signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
  };
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req =
      target.protocol === 'https:'
        ? httpsRequest(target, {
            ...options,
            rejectUnauthorized: !tls.insecureSkipVerify,
            ...(ca ? { ca } : {}),
            ...(cert && key ? { cert, key } : {}),
            ...(tls.serverName ? { servername: tls.serverName } : {}),
          })
        : httpRequest(target, options);
    req.once('response', resolve).once('error', reject);
    req.end(body);
  });
  let text = '';
  for await (const chunk of res) if (text.length < 500) text += String(chunk);
  return { status: res.statusCode ?? 0, text: text.slice(0, 500) };
}
