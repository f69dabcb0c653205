/**
 * The house rules of ARCHITECTURE.md as a check over the import graph: production code never
 * imports a test harness; rooms meet only at each other's index.ts; data flows agent → modules →
 * shared; no import circle (type-only imports count: they still tie two files' meaning together).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Folders that run in production, and which of them may import which. */
export const ROOMS = ['agent', 'ipam-cni', 'log-shipper', 'shared'] as const;
const MAY_IMPORT: Record<string, readonly string[]> = {
  agent: ['ipam-cni', 'log-shipper', 'shared'],
  'ipam-cni': ['shared'],
  'log-shipper': ['shared'],
  shared: [],
  deploy: ['agent', 'ipam-cni', 'log-shipper', 'shared'],
};
/** Only tests and benches live here; product code never reaches into them. */
const HARNESS_DIRS = ['test', 'bench'];

export interface ImportEdge {
  readonly from: string; // repo-relative path of the importing file
  readonly to: string; // repo-relative path of the imported file, or a bare package name
}

// `import … from 'x'`, `export … from 'x'`, `import 'x'`, `import('x')`: the specifier is what
// matters, so one pattern over the text is enough (no code here builds specifiers at run time).
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)['"]([^'"]+)['"]/gm;

export function importsOf(file: string, source: string): string[] {
  const out: string[] = [];
  for (const m of source.replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '').matchAll(SPECIFIER)) {
    const spec = m[1]!;
    if (spec.startsWith('.')) out.push(relative('.', join(dirname(file), spec)));
    else if (!spec.startsWith('node:')) out.push(spec);
  }
  return out;
}

export const isTestFile = (path: string) => path.endsWith('.test.ts');
const roomOf = (path: string) => path.split('/')[0]!;
const isProduct = (path: string) => roomOf(path) in MAY_IMPORT && !isTestFile(path);

/** The entry files a room may be entered by: its index.ts (shared: each top-level file and each folder's index.ts). */
function isEntry(path: string): boolean {
  const parts = path.split('/');
  if (parts[0] === 'shared') return parts.length === 2 || (parts.length === 3 && parts[2] === 'index.ts');
  return parts.length === 2 && parts[1] === 'index.ts';
}

/** Every rule the edges break, one readable line each. */
export function houseViolations(edges: readonly ImportEdge[]): string[] {
  const problems: string[] = [];
  for (const { from, to } of edges) {
    if (!isProduct(from)) continue;
    const target = roomOf(to);
    if (to === 'vitest' || to.startsWith('vitest/') || HARNESS_DIRS.includes(target)) {
      problems.push(`${from} imports ${to}: product code must not depend on tests or benches`);
    } else if (target !== roomOf(from) && (target in MAY_IMPORT || ROOMS.includes(target as never))) {
      if (!MAY_IMPORT[roomOf(from)]!.includes(target))
        problems.push(
          `${from} imports ${to}: ${roomOf(from)}/ must not import ${target}/ (agent → modules → shared)`,
        );
      else if (!isEntry(to)) problems.push(`${from} imports ${to}: enter ${target}/ through its index.ts`);
    }
  }
  for (const cycle of importCycles(edges.filter((e) => isProduct(e.from) && isProduct(e.to))))
    problems.push(`import circle: ${[...cycle, cycle[0]].join(' → ')}`);
  return problems;
}

/** Strongly connected components of more than one file (or a file importing itself): Tarjan. */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || next.get(v)?.includes(v)) cycles.push(scc.reverse());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** The import edges of every .ts file under the given top-level folders of the repo. */
export function repoImportEdges(root: string, folders: readonly string[]): ImportEdge[] {
  const edges: ImportEdge[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(resolve(root, dir), { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'fixtures') walk(path);
      } else if (e.name.endsWith('.ts')) {
        for (const to of importsOf(path, readFileSync(resolve(root, path), 'utf8')))
          edges.push({ from: path, to });
      }
    }
  };
  for (const f of folders) walk(f);
  return edges;
}
