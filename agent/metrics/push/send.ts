import { setTimeout as sleep } from 'node:timers/promises';
import type { PushRetryConfig } from '../../../shared/config/index.ts';
import { NodewardError } from '../../../shared/errors.ts';

export interface SendRequest {
  readonly url: string;
  readonly body: Uint8Array | string;
  readonly headers: Record<string, string>;
  readonly timeout: number;
}

export type SendResult =
  | { readonly ok: true; readonly attempts: number; readonly status: number }
  | { readonly ok: false; readonly attempts: number; readonly error: NodewardError };

/**
 * Whether a failed request can succeed unchanged: 5xx and 429 (the receiver is overloaded or
 * restarting) and network errors yes; other 4xx never — the remote_write spec says a 4xx batch
 * must not be retried, and Alertmanager answers 400 to a body it will never accept.
 */
export const retriableStatus = (status: number) => status >= 500 || status === 429;

/**
 * POSTs one body, retrying what can succeed later with capped doubling delays (plus up to 20 %
 * jitter, so a fleet of nodes does not retry in step). Never throws: the result says what happened.
 */
export async function send(
  request: SendRequest,
  retry: PushRetryConfig,
  signal?: AbortSignal,
  code: 'METRICS_PUSH_FAILED' | 'ALERTS_SEND_FAILED' = 'METRICS_PUSH_FAILED',
): Promise<SendResult> {
  let delay = retry.initial;
  let error: NodewardError | undefined;
  for (let attempt = 1; attempt <= retry.attempts; attempt++) {
    if (signal?.aborted) break;
    try {
      const timeout = AbortSignal.timeout(request.timeout);
      const res = await fetch(request.url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      const text = await res.text().catch(() => '');
      if (res.ok) return { ok: true, attempts: attempt, status: res.status };
      const details = { url: request.url, status: res.status, body: text.slice(0, 500) };
      if (!retriableStatus(res.status)) {
        const rejected = code === 'METRICS_PUSH_FAILED' ? 'METRICS_PUSH_REJECTED' : 'ALERTS_REJECTED';
        return {
          ok: false,
          attempts: attempt,
          error: new NodewardError(rejected, `${request.url} answered ${res.status}: ${text.slice(0, 200)}`, {
            details,
          }),
        };
      }
      error = new NodewardError(code, `${request.url} answered ${res.status}`, { details });
    } catch (err) {
      error = new NodewardError(code, `${request.url}: ${(err as Error).message}`, {
        cause: err,
        details: { url: request.url },
      });
    }
    if (attempt < retry.attempts) {
      await sleep(delay * (1 + Math.random() * 0.2), undefined, signal ? { signal } : {}).catch(() => {});
      delay = Math.min(delay * 2, retry.max);
    }
  }
  return {
    ok: false,
    attempts: retry.attempts,
    error: error ?? new NodewardError(code, `${request.url}: stopped before sending`),
  };
}
