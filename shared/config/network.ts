import { z } from 'zod';
import { cniSchema } from './cni.ts';
import { duration, shown, url } from './units.ts';

const STORES = ['file', 'etcd'] as const;

const path = () => z.string().min(1);

/** The `network` section: CNI server and IPAM (ipam-cni/). */
export const networkSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Serve the CNI plugin and IPAM (needs root and a network to manage; off in the embedded default).',
      ),
    cni: cniSchema
      .prefault({})
      .describe('The CNI plugin (ipam-cni/cni): socket, journal, uplinks, installed network.'),
    ipam: z
      .strictObject({
        store: z
          .enum(STORES, { error: (issue) => `expected "file" or "etcd", got ${shown(issue.input)}` })
          .default('file')
          .describe(
            'Where address allocations live: file (this node only, no etcd) or etcd (cluster-wide, network.etcd).',
          ),
        file: z
          .strictObject({
            dir: path()
              .default('ipam')
              .describe(
                'Directory of the file store; a relative path is under dataDir. Written with fsync, safe for the agent and the CLI at once.',
              ),
          })
          .prefault({})
          .describe('The node-local file store.'),
        conflictRetries: z
          .int()
          .min(0)
          .max(100)
          .default(10)
          .describe(
            'Compare-and-swap races one allocation may lose (another writer took the address or block first) before it fails with IPAM_CONTENTION (retriable).',
          ),
        batchSize: z
          .int()
          .min(1)
          .max(64)
          .default(32)
          .describe(
            'Most allocations of one node and pool written by one store transaction (group commit); 1 disables grouping.',
          ),
        viewMaxAge: duration()
          .prefault('30s')
          .describe(
            'How long a node trusts its cached view of its blocks before reading them again (to reuse addresses released elsewhere); correctness never depends on it — every write compares revisions.',
          ),
        namespaceDefaults: z
          .boolean()
          .default(true)
          .describe(
            "Honour a namespace's default pool (namespace annotation nodeward.io/ipam-pool), read from the API server with pods.source apiserver (namespaces list/watch, as for pools' namespaceSelector). Until the agent has read a namespace, its pods that name no pool nor IP wait (CNI 11, try again) rather than take the network's pool; off: no namespace defaults, and namespaces are read only for pools with a namespaceSelector.",
          ),
        gc: z
          .strictObject({
            enabled: z
              .boolean()
              .default(true)
              .describe(
                "Run the IPAM garbage collector in the agent: this node's leaked addresses and empty blocks, and (etcd) dead nodes' allocations.",
              ),
            interval: duration()
              .prefault('1m')
              .describe('How often the agent looks for leaked addresses, empty blocks and dead nodes.'),
            grace: duration()
              .prefault('15m')
              .describe(
                'How long a record must stay unused, unchanged, between two observations before the GC frees it (a leaked address, an empty block, a node whose liveness lease is gone).',
              ),
            leaseTtl: duration()
              .prefault('30s')
              .describe(
                "TTL of the agent's etcd lease holding its liveness key nodes/<node> and the cluster GC election (etcd store only; the file store has no other nodes).",
              ),
            cluster: z
              .boolean()
              .default(true)
              .describe(
                'Collect the allocations of nodes whose liveness key is gone (etcd store only; one elected agent at a time) — only once the API server confirms: the Node is deleted, or no pod of the allocation is bound to it any more (needs pods.source apiserver; without it, or while the API server does not answer, nothing is freed). Turn off while agents older than this one still run: they publish no liveness key.',
              ),
            dockerSocket: path()
              .default('/var/run/docker.sock')
              .describe(
                'Docker API socket: a container Docker still lists is never collected (checked only when the socket exists).',
              ),
          })
          .prefault({})
          .describe(
            'Leak GC: an address is freed only when its container is gone (netns, runtime) on two observations a grace apart, by compare.',
          ),
      })
      .prefault({})
      .describe('Address management.'),
    etcd: z
      .strictObject({
        endpoints: z
          .array(url())
          .default([])
          .describe(
            'Client URLs of the etcd members, e.g. https://10.0.0.1:2379 (all of them: the client fails over).',
          ),
        prefix: z
          .string()
          .regex(/^\/(.*\/)?$/, {
            error: (issue) =>
              `expected a key prefix that starts and ends with "/", got ${shown(issue.input)}`,
          })
          .default('/nodeward/')
          .describe('Key prefix of everything nodeward keeps in etcd; IPAM uses <prefix>ipam/v1/.'),
        tls: z
          .strictObject({
            ca: path()
              .optional()
              .describe(
                'PEM file of the CA that signed the etcd server certificates (default: system roots).',
              ),
            cert: path()
              .optional()
              .describe('PEM client certificate, for etcd started with --client-cert-auth.'),
            key: path().optional().describe('PEM private key of the client certificate.'),
          })
          .prefault({})
          .describe('TLS towards etcd (https:// endpoints).'),
        username: z.string().min(1).optional().describe('etcd user, when etcd has authentication enabled.'),
        password: z
          .string()
          .optional()
          .describe(
            'Password of network.etcd.username (prefer the env NODEWARD_NETWORK__ETCD__PASSWORD from a Secret).',
          ),
        dialTimeout: duration().prefault('5s').describe('How long connecting to an etcd member may take.'),
        requestTimeout: duration()
          .prefault('5s')
          .describe(
            'Deadline of each etcd request; past it the allocation fails with STORE_UNAVAILABLE (retriable).',
          ),
      })
      .prefault({})
      .describe('The etcd cluster of the IPAM store (network.ipam.store: etcd).'),
  })
  .superRefine((network, ctx) => {
    const { etcd } = network;
    if (network.enabled && network.ipam.store === 'etcd' && etcd.endpoints.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['etcd', 'endpoints'],
        message: 'network.ipam.store is etcd: list at least one etcd client URL',
      });
    }
    if ((etcd.tls.cert === undefined) !== (etcd.tls.key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['etcd', 'tls', etcd.tls.cert === undefined ? 'cert' : 'key'],
        message: 'a client certificate needs both tls.cert and tls.key',
      });
    }
    const tls = etcd.tls.ca !== undefined || etcd.tls.cert !== undefined;
    for (const [i, endpoint] of etcd.endpoints.entries()) {
      if (tls && endpoint.startsWith('http://')) {
        ctx.addIssue({
          code: 'custom',
          path: ['etcd', 'endpoints', i],
          message: `network.etcd.tls is set: use https://, got ${shown(endpoint)}`,
        });
      }
    }
    if (etcd.password !== undefined && etcd.username === undefined) {
      ctx.addIssue({ code: 'custom', path: ['etcd', 'username'], message: 'a password needs a username' });
    }
  });

export type NetworkConfig = z.output<typeof networkSchema>;
