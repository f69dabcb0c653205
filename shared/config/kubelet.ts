import { z } from 'zod';
import { duration } from './units.ts';

/**
 * The `kubelet` section: where pod metadata comes from, for every module — the kubelet's /pods on
 * this node. One cache per agent serves them all (shared/pods), so the node's kubelet sees one
 * poll, not one per module.
 */
export const kubeletSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Read pod metadata from the kubelet: log lines get owner workload (deployment), pod labels and annotations; network.cni.stickyStatefulSets learns owner kinds; metrics in cgroups mode get pod, namespace, container and image. Off in the embedded default (no cluster). Without it, or while the kubelet fails, log lines carry the labels in their file name.',
      ),
    url: z
      .url({ protocol: /^https?$/ })
      .default('https://127.0.0.1:10250/pods')
      .describe("The kubelet's /pods endpoint (node-local; needs nodes/proxy or nodes/pods RBAC)."),
    tokenFile: z
      .string()
      .default('/var/run/secrets/kubernetes.io/serviceaccount/token')
      .describe(
        'Bearer token file, re-read on every request (projected tokens rotate); missing: no token sent.',
      ),
    caFile: z
      .string()
      .default('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt')
      .describe("CA bundle that signed the kubelet's serving certificate; missing: the system CAs."),
    insecureSkipVerify: z
      .boolean()
      .default(false)
      .describe(
        'Accept any kubelet certificate (kubelets with self-signed serving certificates). The token is then sent to whoever answers at url.',
      ),
    pollInterval: duration().prefault('15s').describe('How often the pod list is fetched.'),
    refreshMinInterval: duration()
      .prefault('1s')
      .describe(
        'A log file of a pod not known yet triggers a fetch at once, but at most once per this interval.',
      ),
    timeout: duration().prefault('5s').describe('Socket inactivity before a kubelet request fails.'),
    deletedGrace: duration()
      .prefault('5m')
      .describe(
        "How long a pod's metadata is kept after it left the kubelet's list, so its last lines are still labelled.",
      ),
  })
  .prefault({})
  .describe(
    "Pod metadata from the kubelet's /pods on this node, shared by the logs, network and metrics modules.",
  );

export type KubeletConfig = z.output<typeof kubeletSchema>;
