import { isAbsolute, join } from 'node:path';
import type { NetworkConfig } from '../../shared/config/index.ts';
import { IPAM_PREFIX } from '../ipam/keys.ts';
import { FileStore } from './file.ts';
import type { Store } from './store.ts';

/**
 * The IPAM store the config names. etcd3 (≈ 185 ms to load) is imported only when the store is
 * etcd, so commands that never touch etcd do not pay for it.
 */
export async function openIpamStore(config: { dataDir: string; network: NetworkConfig }): Promise<Store> {
  const { ipam, etcd } = config.network;
  if (ipam.store === 'file') {
    const dir = isAbsolute(ipam.file.dir) ? ipam.file.dir : join(config.dataDir, ipam.file.dir);
    return FileStore.open(dir);
  }
  const { EtcdStore } = await import('./etcd.ts');
  return EtcdStore.open({
    endpoints: etcd.endpoints,
    prefix: `${etcd.prefix}${IPAM_PREFIX}`,
    tls: etcd.tls,
    ...(etcd.username === undefined ? {} : { username: etcd.username }),
    ...(etcd.password === undefined ? {} : { password: etcd.password }),
    dialTimeoutMs: etcd.dialTimeout,
    requestTimeoutMs: etcd.requestTimeout,
  });
}
