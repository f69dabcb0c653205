import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { SegmentHealth } from '../net/segment.ts';

/** The CNI server's metrics, on the network module's registry. */
export interface CniMetrics {
  readonly requests: Counter<'verb' | 'code'>;
  readonly addSeconds: Histogram;
  readonly journalDepth: Gauge;
  readonly teardownSeconds: Histogram<'result'>;
  readonly stageSeconds: Histogram<'verb' | 'stage'>;
  setSegments(health: readonly SegmentHealth[]): void;
}

export function createCniMetrics(registry: Registry): CniMetrics {
  const requests = new Counter({
    name: 'nodeward_cni_requests_total',
    help: 'CNI requests served by the agent, by verb and result code (0 = success, else the CNI error code).',
    labelNames: ['verb', 'code'],
    registers: [registry],
  });
  const addSeconds = new Histogram({
    name: 'nodeward_cni_add_duration_seconds',
    help: 'Time the agent spends on one CNI ADD (IPAM + links), successful or not.',
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const journalDepth = new Gauge({
    name: 'nodeward_cni_journal_depth',
    help: 'DELs in the node-local journal whose teardown (host veth, address) is not done: answered DELs being torn down in the background, and DELs recorded while the agent or the IPAM store was unreachable.',
    registers: [registry],
  });
  const teardownSeconds = new Histogram({
    name: 'nodeward_cni_teardown_duration_seconds',
    help: 'One background DEL teardown attempt (host veth removal and address release), by result (ok, failed: kept and retried).',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const stageSeconds = new Histogram({
    name: 'nodeward_cni_stage_duration_seconds',
    help: 'Time in each stage of a verb: ADD settle (waiting for a pending teardown), ipam, pair, segment, configure; DEL journal (before the answer), links, release (in the background).',
    labelNames: ['verb', 'stage'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const up = new Gauge({
    name: 'nodeward_cni_segment_link_up',
    help: "Whether a segment's link is administratively up (1) or not (0); link is bridge or uplink.",
    labelNames: ['segment', 'link', 'device'],
    registers: [registry],
  });
  const carrier = new Gauge({
    name: 'nodeward_cni_segment_uplink_carrier',
    help: "Whether a segment's uplink (VLAN subinterface or VXLAN device) has carrier.",
    labelNames: ['segment', 'device'],
    registers: [registry],
  });
  const peers = new Gauge({
    name: 'nodeward_cni_segment_vxlan_peers',
    help: 'Other nodes this node floods to on a VXLAN segment (from the IPAM store).',
    labelNames: ['segment'],
    registers: [registry],
  });
  const segments = new Gauge({
    name: 'nodeward_cni_segments',
    help: 'Segments this node has links for.',
    registers: [registry],
  });
  return {
    requests,
    addSeconds,
    journalDepth,
    teardownSeconds,
    stageSeconds,
    setSegments(health) {
      up.reset();
      carrier.reset();
      peers.reset();
      segments.set(health.length);
      for (const h of health) {
        up.set({ segment: h.segment, link: 'bridge', device: h.bridge }, h.bridgeUp ? 1 : 0);
        if (h.uplink) {
          up.set({ segment: h.segment, link: 'uplink', device: h.uplink }, h.uplinkUp ? 1 : 0);
          carrier.set({ segment: h.segment, device: h.uplink }, h.uplinkCarrier ? 1 : 0);
        }
        if (h.segment.startsWith('vxlan/')) peers.set({ segment: h.segment }, h.peers);
      }
    },
  };
}
