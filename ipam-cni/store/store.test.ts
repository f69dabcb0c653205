import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { type Etcd, Lab, skipReason, startEtcd } from '../../test/lab/index.ts';
import { storeConformance } from '../../test/support/ipam-cni/store-conformance.ts';
import { EtcdStore } from './etcd.ts';
import { FileStore } from './file.ts';
import { MemoryStore } from './memory.ts';

storeConformance('memory', async () => ({ store: new MemoryStore() }));

storeConformance('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nodeward-filestore-'));
  return { store: await FileStore.open(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

const reason = skipReason({ binaries: ['etcd', 'etcdctl'] });
if (reason) console.warn(`[lab] etcd store conformance skipped: ${reason} (install etcd-server etcd-client)`);
const lab = new Lab();
let etcd: Promise<Etcd> | undefined;
afterAll(() => lab.cleanup());

storeConformance(
  'etcd (1 member)',
  async () => {
    etcd ??= startEtcd({ lab, members: 1 });
    const { endpoints } = await etcd;
    const store = await EtcdStore.open({
      endpoints,
      // A fresh prefix per test: the cluster is shared, the key spaces are not.
      prefix: `/conformance-${randomBytes(4).toString('hex')}/`,
      dialTimeoutMs: 2000,
      requestTimeoutMs: 5000,
    });
    return { store };
  },
  { skip: reason },
);
