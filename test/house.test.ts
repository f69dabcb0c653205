import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  houseViolations,
  type ImportEdge,
  importCycles,
  importsOf,
  repoImportEdges,
} from './support/imports.ts';

const ROOT = resolve(import.meta.dirname, '..');
const edge = (from: string, to: string): ImportEdge => ({ from, to });

describe('the house rules (ARCHITECTURE.md: rooms, one-way imports, no harness in the product)', () => {
  it('hold for every .ts file in the repository', () => {
    const edges = repoImportEdges(ROOT, [
      'agent',
      'ipam-cni',
      'log-shipper',
      'shared',
      'deploy',
      'test',
      'bench',
    ]);
    expect(edges.length).toBeGreaterThan(500); // the walk really saw the code
    expect(houseViolations(edges)).toEqual([]);
  });

  // The check itself, on small graphs: each rule must be able to fail.
  it('reports product code that imports vitest, test/ or bench/', () => {
    expect(
      houseViolations([
        edge('ipam-cni/store/conformance.ts', 'vitest'),
        edge('shared/pods/fake.ts', 'test/lab/certs.ts'),
        edge('log-shipper/load.ts', 'bench/lib/proc-stats.ts'),
      ]),
    ).toEqual([
      'ipam-cni/store/conformance.ts imports vitest: product code must not depend on tests or benches',
      'shared/pods/fake.ts imports test/lab/certs.ts: product code must not depend on tests or benches',
      'log-shipper/load.ts imports bench/lib/proc-stats.ts: product code must not depend on tests or benches',
    ]);
  });

  it('lets tests and benches import anything', () => {
    expect(
      houseViolations([
        edge('log-shipper/parse.test.ts', 'test/lab/index.ts'),
        edge('test/support/pods/fake-kubelet.ts', 'shared/pods/pod.ts'),
        edge('bench/ipam/load.ts', 'ipam-cni/ipam/ipam.ts'),
      ]),
    ).toEqual([]);
  });

  it('reports imports against the flow agent → modules → shared', () => {
    expect(
      houseViolations([
        edge('ipam-cni/index.ts', 'agent/module.ts'),
        edge('shared/pods/cache.ts', 'log-shipper/index.ts'),
        edge('log-shipper/enrich.ts', 'ipam-cni/index.ts'),
      ]),
    ).toEqual([
      'ipam-cni/index.ts imports agent/module.ts: ipam-cni/ must not import agent/ (agent → modules → shared)',
      'shared/pods/cache.ts imports log-shipper/index.ts: shared/ must not import log-shipper/ (agent → modules → shared)',
      'log-shipper/enrich.ts imports ipam-cni/index.ts: log-shipper/ must not import ipam-cni/ (agent → modules → shared)',
    ]);
  });

  it('reports a room entered other than through its index.ts', () => {
    expect(
      houseViolations([
        edge('agent/modules.ts', 'ipam-cni/ipam/ipam.ts'),
        edge('agent/modules.ts', 'ipam-cni/index.ts'),
        edge('ipam-cni/cni/agent.ts', 'shared/config/cni.ts'),
        edge('ipam-cni/cni/agent.ts', 'shared/config/index.ts'),
        edge('ipam-cni/cni/agent.ts', 'shared/errors.ts'),
      ]),
    ).toEqual([
      'agent/modules.ts imports ipam-cni/ipam/ipam.ts: enter ipam-cni/ through its index.ts',
      'ipam-cni/cni/agent.ts imports shared/config/cni.ts: enter shared/ through its index.ts',
    ]);
  });

  it('reports import circles, type-only ones included', () => {
    const source =
      "import type { PoolUsage } from './admin.ts';\nexport type { X } from '../store/store.ts';";
    expect(importsOf('ipam-cni/ipam/metrics.ts', source)).toEqual([
      'ipam-cni/ipam/admin.ts',
      'ipam-cni/store/store.ts',
    ]);
    const circle = [
      edge('ipam-cni/ipam/admin.ts', 'ipam-cni/ipam/ipam.ts'),
      edge('ipam-cni/ipam/ipam.ts', 'ipam-cni/ipam/metrics.ts'),
      edge('ipam-cni/ipam/metrics.ts', 'ipam-cni/ipam/admin.ts'),
      edge('ipam-cni/ipam/ipam.ts', 'ipam-cni/ipam/keys.ts'),
    ];
    expect(importCycles(circle)).toEqual([
      ['ipam-cni/ipam/admin.ts', 'ipam-cni/ipam/ipam.ts', 'ipam-cni/ipam/metrics.ts'],
    ]);
    expect(houseViolations(circle)).toEqual([
      'import circle: ipam-cni/ipam/admin.ts → ipam-cni/ipam/ipam.ts → ipam-cni/ipam/metrics.ts → ipam-cni/ipam/admin.ts',
    ]);
  });

  it('finds static, re-export, side-effect and dynamic imports, not ones in comments', () => {
    const source = [
      "import { a } from './a.ts';",
      "export { b } from '../b.ts';",
      "import './c.ts';",
      "const d = await import('../shared/d.ts');",
      "// import { e } from './e.ts';",
      "/* import { f } from './f.ts'; */",
      "import { readFile } from 'node:fs';",
      "import { z } from 'zod';",
    ].join('\n');
    expect(importsOf('log-shipper/x.ts', source)).toEqual([
      'log-shipper/a.ts',
      'b.ts',
      'log-shipper/c.ts',
      'shared/d.ts',
      'zod',
    ]);
  });
});
