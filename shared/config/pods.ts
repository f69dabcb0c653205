import { z } from 'zod';
import { duration } from './units.ts';

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How one endpoint is reached: bearer token and CA of the pod's service account by default. */
const credentials = (what: string) => ({
  tokenFile: z
    .string()
    .default(`${SERVICE_ACCOUNT}/token`)
    .describe(
      'Bearer token file, re-read on every request (projected tokens rotate); missing: no token sent.',
    ),
  caFile: z
    .string()
    .default(`${SERVICE_ACCOUNT}/ca.crt`)
    .describe(`CA bundle that signed the ${what}'s serving certificate; missing: the system CAs.`),
  insecureSkipVerify: z
    .boolean()
    .default(false)
    .describe(`Accept any ${what} certificate. The token is then sent to whoever answers at url.`),
});

/**
 * The `pods` section: where pod metadata comes from, for every module. One cache per agent serves
 * them all (shared/pods): log labels (owner workload, pod labels, annotations), sticky StatefulSet
 * addresses, pod names of containers found by cgroup.
 */
export const podsSchema = z
  .strictObject({
    source: z
      .enum(['none', 'kubelet', 'apiserver'])
      .default('none')
      .describe(
        "Where pod metadata comes from: kubelet (its /pods on this node, polled: no API-server load; needs nodes/proxy RBAC, which also reaches the kubelet's exec API), apiserver (one list + watch of this node's pods, filtered by spec.nodeName: pods are known before their first line, deletions at once; needs pods list/watch; the network module also reads namespaces and its Node there, for IPAM pool selectors and namespace default pools, and the cluster GC asks it whether a node whose lease is gone still runs pods: namespaces and nodes get/list/watch), or none (the embedded default: log lines carry the labels in their file name).",
      ),
    kubelet: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/ })
          .default('https://127.0.0.1:10250/pods')
          .describe("The kubelet's /pods endpoint (node-local)."),
        ...credentials('kubelet'),
        pollInterval: duration().prefault('15s').describe('How often the pod list is fetched.'),
        refreshMinInterval: duration()
          .prefault('1s')
          .describe('A pod not known yet triggers a fetch at once, but at most once per this interval.'),
      })
      .prefault({})
      .describe('pods.source: kubelet.'),
    apiserver: z
      .strictObject({
        url: z
          .union([z.literal(''), z.url({ protocol: /^https?$/ })])
          .default('')
          .describe(
            "The API server's base URL; empty: in-cluster, from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (set in every pod).",
          ),
        ...credentials('API server'),
        watchTimeout: duration()
          .prefault('5m')
          .describe(
            'Length of one watch request (timeoutSeconds, jittered between this and twice it, as client-go does); then it is renewed from where it was.',
          ),
        watchIdleTimeout: duration()
          .prefault('150s')
          .describe(
            'A watch that brings nothing, not even a bookmark (the API server sends one about once a minute), for this long is taken for dead and renewed from where it was: a connection dropped without a FIN looks just quiet.',
          ),
        resolveWait: duration()
          .prefault('1s')
          .describe(
            'How long a lookup of a pod (or, for IPAM pool admission, a namespace or this node) not known yet waits for the watch to bring it.',
          ),
      })
      .prefault({})
      .describe('pods.source: apiserver.'),
    timeout: duration().prefault('5s').describe('Socket inactivity before a request fails.'),
    deletedGrace: duration()
      .prefault('5m')
      .describe(
        "How long a pod's metadata is kept after it was deleted, so its last log lines are still labelled.",
      ),
  })
  .prefault({})
  .describe(
    'Pod metadata (kubelet or API server), one cache shared by the logs, network and metrics modules.',
  );

export type PodsConfig = z.output<typeof podsSchema>;
