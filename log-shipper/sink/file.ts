import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { jsonLines, type Sink, sinkError } from './sink.ts';

/** Appends JSON lines to a file; each batch is fsync'd before its send resolves. */
export function createFileSink(path: string): Sink {
  let fh: FileHandle | undefined;
  const errno = (err: unknown) => (err as NodeJS.ErrnoException).code ?? 'EIO';
  return {
    name: 'file',
    async open() {
      try {
        await mkdir(dirname(path), { recursive: true });
        fh = await open(path, 'a', 0o640);
      } catch (err) {
        throw sinkError('file', errno(err), err);
      }
    },
    async send(records) {
      if (records.length === 0) return;
      if (fh === undefined) throw sinkError('file', 'closed', new Error(`${path} is not open`));
      try {
        await fh.writeFile(jsonLines(records));
        await fh.datasync();
      } catch (err) {
        throw sinkError('file', errno(err), err);
      }
    },
    async close() {
      const h = fh;
      fh = undefined;
      await h?.close();
    },
  };
}
