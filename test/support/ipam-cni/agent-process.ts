/**
 * The CNI agent side in a process of its own, as on a node (the agent is a DaemonSet, not the
 * runtime), for the bench and for tests that SIGKILL it: its event loop serves only the shim.
 * argv[2]: JSON {etcd, prefix, cni, node}. Prints "ready" once the socket serves; stops on SIGTERM
 * and prints where the agent's time went per stage.
 */
import { Registry } from 'prom-client';
import { startCniAgent } from '../../../ipam-cni/cni/agent.ts';
import { createCniMetrics } from '../../../ipam-cni/cni/metrics.ts';
import { Ipam } from '../../../ipam-cni/ipam/ipam.ts';
import { EtcdStore } from '../../../ipam-cni/store/etcd.ts';
import { cniSchema } from '../../../shared/config/index.ts';

const o = JSON.parse(process.argv[2] ?? '{}') as { etcd: string; prefix: string; cni: unknown; node: string };
const store = await EtcdStore.open({
  endpoints: [o.etcd],
  prefix: o.prefix,
  dialTimeoutMs: 2000,
  requestTimeoutMs: 5000,
});
const metrics = createCniMetrics(new Registry());
/** Seconds per "VERB stage", printed at the end: where the agent's time goes. */
const stages = new Map<string, number[]>();
const agent = await startCniAgent({
  onStage: (verb, stage, seconds) => {
    const k = `${verb} ${stage}`;
    stages.set(k, [...(stages.get(k) ?? []), seconds * 1000]);
  },
  cni: cniSchema.parse(o.cni),
  store,
  node: o.node,
  ipam: new Ipam({ store }),
  metrics,
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  // What the agent itself spent per ADD (the rest of an ADD is the shim process and the socket).
  void metrics.addSeconds
    .get()
    .then((h: { values: { metricName?: string; value: number }[] }) => {
      const sum = h.values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
      const count = h.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
      process.stderr.write(
        `  agent-side ADD mean ${((sum / Math.max(1, count)) * 1000).toFixed(1)} ms over ${count}\n`,
      );
      for (const [k, v] of stages) {
        const sorted = [...v].sort((a, b) => a - b);
        const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
        process.stderr.write(
          `  agent ${k.padEnd(14)} p50 ${q(50).toFixed(1)} p90 ${q(90).toFixed(1)} p99 ${q(99).toFixed(1)} max ${sorted.at(-1)!.toFixed(1)} ms (n ${v.length})\n`,
        );
      }
    })
    .then(() => agent.stop())
    .then(() => store.close())
    .finally(() => process.exit(0));
});
