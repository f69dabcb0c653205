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
