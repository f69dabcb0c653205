import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A kernel file under a root (procRoot, sysRoot), read whole. */
export function readKernelFile(root: string, ...path: string[]): Promise<string> {
  return readFile(join(root, ...path), 'utf8');
}

/** Whether an fs error means "the kernel does not offer this" rather than a failure. */
export function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The whitespace-separated fields of one line. */
export function fieldsOf(line: string): string[] {
  return line.trim().split(/\s+/);
}

/** A non-negative number from a kernel file, or an error naming where it came from. */
export function numberFrom(text: string | undefined, where: string): number {
  const value = text === undefined || text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) throw new Error(`${where}: expected a number, got ${JSON.stringify(text)}`);
  return value;
}
