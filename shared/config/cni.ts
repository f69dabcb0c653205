import { z } from 'zod';
import { duration } from './units.ts';

const path = () => z.string().min(1);

/**
 * The `network.cni` section: the agent side of the CNI plugin (socket, journal, uplinks) and what
 * `nodeward cni install` writes into the .conflist. The shim itself never loads this: it reads the
 * socket and journal paths from the CNI network config on its stdin (written by `cni install`).
 */
export const cniSchema = z
  .strictObject({
    socket: path()
      .default('/run/nodeward/cni.sock')
      .describe('Unix socket the agent serves CNI requests on (mode 0600, in a 0700 directory; root only).'),
    journalDir: path()
      .default('/var/lib/nodeward/cni-journal')
      .describe(
        'Node-local directory where the shim records DELs while the agent is down; the agent replays and empties it at start.',
      ),
    timeout: duration()
      .default(30_000)
      .describe(
        'How long the shim waits for the agent to answer one request (ADD then fails with 11, DEL is journaled).',
      ),
    networkName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)
      .default('nodeward')
      .describe('Name of the CNI network in the installed .conflist.'),
    cniVersion: z
      .enum(['0.4.0', '1.0.0', '1.1.0'])
      .default('1.0.0')
      .describe(
        'cniVersion of the installed .conflist, what runtimes on libcni before 1.2 use (they refuse 1.1.0 results). The conflist also lists in cniVersions every later version that nodeward and each chained plugin speak, so a runtime on libcni 1.2 or later picks 1.1.0 (GC and STATUS) where all of them can.',
      ),
    chain: z
      .array(z.enum(['portmap', 'bandwidth']))
      .default(['portmap', 'bandwidth'])
      .refine((a) => new Set(a).size === a.length, { error: 'each plugin at most once' })
      .describe(
        "Reference plugins `cni install` chains after nodeward when they are in the CNI bin dir, as Calico and Flannel do: portmap serves hostPort, bandwidth the kubernetes.io/ingress-bandwidth and egress-bandwidth annotations. One that is missing is reported by `cni install` and named in the conflist's notes.",
      ),
    conflist: z
      .strictObject({
        dir: z
          .string()
          .default('')
          .describe(
            "Where the agent itself writes the .conflist, once it is ready (the host's /etc/cni/net.d as mounted in its pod), and removes it when it stops (removeOnStop): the runtime reports the network not ready and the node takes no new pods while no agent can network them. Empty: the agent writes none; `nodeward cni install` does.",
          ),
        name: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)
          .default('10-nodeward.conflist')
          .describe('File name of the .conflist the agent writes.'),
        binDir: path()
          .default('/opt/cni/bin')
          .describe(
            'The CNI bin dir as the agent sees it, where it looks for the chained plugins (portmap, bandwidth) the conflist names.',
          ),
        removeOnStop: z
          .boolean()
          .default(true)
          .describe(
            'Remove the .conflist when the agent stops (SIGTERM: an upgrade, an uninstall, a node shutdown) and it is still the one this agent wrote; a crashed agent leaves it (the shim then answers try again).',
          ),
      })
      .prefault({})
      .describe('The .conflist written by the agent once it is ready, instead of by `cni install`.'),
    pool: z
      .string()
      .optional()
      .describe("The network's IPAM pool (used when no annotation or namespace default names one)."),
    mtu: z
      .int()
      .min(576)
      .max(65_535)
      .optional()
      .describe('MTU of pod interfaces and bridges (default: 1500, 1450 on VXLAN segments).'),
    uplink: z
      .strictObject({
        master: z
          .string()
          .min(1)
          .max(15)
          .default('eth0')
          .describe('The node interface VLAN subinterfaces hang off and VXLAN traffic leaves by.'),
        localAddress: z
          .string()
          .optional()
          .describe(
            'Source address of VXLAN traffic and what other nodes flood to (default: the first IPv4 address of uplink.master).',
          ),
        vxlanPort: z.int().min(1).max(65_535).default(4789).describe('UDP port of VXLAN segments.'),
      })
      .prefault({})
      .describe('How pod segments reach the rest of the network (per pool: vlan, vxlan or none).'),
    hostNetns: path()
      .optional()
      .describe(
        'Run host-side link changes in this network namespace (a path) instead of the agent\'s own; for labs with several "hosts" on one machine.',
      ),
    peerSyncInterval: duration()
      .default(5000)
      .describe(
        'How often the agent re-reads the VXLAN peers of its segments from the IPAM store and checks segment health.',
      ),
    stickyStatefulSets: z
      .boolean()
      .default(false)
      .describe(
        'Give StatefulSet pods sticky addresses (kept across re-creation of the same namespace/name) by their owner kind, from the pod metadata of the top-level pods section (needs pods.source kubelet or apiserver). Without it only the pod annotation nodeward.io/sticky-ip: "true" asks for one.',
      ),
    peerGrace: duration()
      .default(60_000)
      .describe(
        'How long a VXLAN peer must be gone before this node removes its flood entry. Gone: its key vteps/<vni>/<node> was deleted (an agent deletes its own when it stops cleanly) or, with network.ipam.gc on an etcd store, its liveness key nodes/<node> expired. Keep it above an agent restart (upgrade): the restarted agent publishes again at start.',
      ),
  })
  .describe('The CNI plugin (ipam-cni/cni): socket, journal, uplinks, installed network.');

export type CniConfig = z.output<typeof cniSchema>;
export type CniConfigInput = z.input<typeof cniSchema>;
