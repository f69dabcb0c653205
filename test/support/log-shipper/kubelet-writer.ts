import {
  appendFileSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * A container runtime and the kubelet's log rotation in one, synchronous: appends CRI lines to
 * `0.log` and, once it reaches maxBytes, rotates it the kubelet's way (test/lab/kubelet-lite.ts):
 * delete the oldest rotations beyond maxFiles (the live log and the one about to be rotated
 * count), gzip the remaining plain rotations, rename `0.log` → `0.log.<YYYYMMDD-hhmmss>` and let
 * the runtime reopen an empty `0.log`. Stamps advance one second per rotation from a fixed clock,
 * so they sort like the kubelet's. Every line written is remembered by message.
 */
export class KubeletLikeWriter {
  readonly file: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  /** Every message written, in order. */
  readonly written: string[] = [];
  /** Messages per rotated file name (without .gz), as rotated; and which were deleted. */
  readonly rotations: { name: string; messages: string[] }[] = [];
  readonly deleted: string[] = [];
  private current: string[] = [];
  private clock: number;
  private size = 0;

  constructor(file: string, options: { maxBytes: number; maxFiles: number; clock?: number }) {
    this.file = file;
    this.maxBytes = options.maxBytes;
    this.maxFiles = options.maxFiles;
    this.clock = options.clock ?? Date.UTC(2026, 0, 1, 0, 0, 0);
    this.size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  }

  /** Full lines `F`; rotates after the append when the file reached maxBytes. */
  lines(messages: readonly string[], stream: 'stdout' | 'stderr' = 'stdout'): void {
    let text = '';
    for (const m of messages) text += `${stamp()} ${stream} F ${m}\n`;
    this.append(text, messages);
    if (this.size >= this.maxBytes) this.rotate();
  }

  /**
   * One message written as CRI partials, `P` parts in the current file, a rotation, and the final
   * `F` part in the next file: a line cut by the rotation.
   */
  straddling(message: string, cut: number, stream: 'stdout' | 'stderr' = 'stdout'): void {
    this.append(`${stamp()} ${stream} P ${message.slice(0, cut)}\n`, []);
    this.rotate();
    this.append(`${stamp()} ${stream} F ${message.slice(cut)}\n`, [message]);
  }

  rotate(): void {
    const dir = dirname(this.file);
    const prefix = `${basename(this.file)}.`;
    let rotated = readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && !f.endsWith('.tmp'))
      .sort();
    const excess = rotated.length - Math.max(this.maxFiles - 2, 0);
    for (const name of rotated.slice(0, Math.max(excess, 0))) {
      unlinkSync(join(dir, name));
      this.deleted.push(name.replace(/\.gz$/, ''));
    }
    rotated = rotated.slice(Math.max(excess, 0));
    for (const name of rotated) {
      if (name.endsWith('.gz')) continue;
      const path = join(dir, name);
      writeFileSync(`${path}.tmp`, gzipSync(readFileSync(path)));
      renameSync(`${path}.tmp`, `${path}.gz`);
      unlinkSync(path);
    }
    this.clock += 1000;
    const t = new Date(this.clock).toISOString();
    const name = `${basename(this.file)}.${t.slice(0, 10).replaceAll('-', '')}-${t.slice(11, 19).replaceAll(':', '')}`;
    renameSync(this.file, join(dir, name));
    // ReopenContainerLog: the runtime creates the new file.
    writeFileSync(this.file, '');
    this.rotations.push({ name, messages: this.current });
    this.current = [];
    this.size = 0;
  }

  /** Messages of files deleted by the file-count limit. */
  deletedMessages(): Set<string> {
    const gone = new Set(this.deleted);
    return new Set(this.rotations.filter((r) => gone.has(r.name)).flatMap((r) => r.messages));
  }

  private append(text: string, messages: readonly string[]): void {
    appendFileSync(this.file, text);
    this.size += Buffer.byteLength(text);
    for (const m of messages) {
      this.written.push(m);
      this.current.push(m);
    }
  }
}

function stamp(): string {
  return new Date().toISOString().replace('Z', '123456Z');
}
