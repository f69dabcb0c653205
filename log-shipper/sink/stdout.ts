import type { Writable } from 'node:stream';
import { jsonLines, type Sink, sinkError } from './sink.ts';

/** JSON lines on stdout (the agent's own logs are on stderr); a batch counts once the OS has it. */
export function createStdoutSink(out: Writable = process.stdout): Sink {
  return {
    name: 'stdout',
    async open() {},
    send(records) {
      if (records.length === 0) return Promise.resolve();
      return new Promise((resolve, reject) => {
        out.write(jsonLines(records), (err) => {
          if (err) reject(sinkError('stdout', (err as NodeJS.ErrnoException).code ?? 'EIO', err));
          else resolve();
        });
      });
    },
    async close() {},
  };
}
