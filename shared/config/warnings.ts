import type { Config } from './schema.ts';

/**
 * Settings that are valid but will hurt on a real cluster. Not errors: a lab or a cluster whose
 * DNS runs outside Kubernetes may mean exactly this. `config check` prints them, the agent logs
 * them at start.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.network.enabled && config.network.ipam.store === 'etcd') {
    for (const [i, endpoint] of config.network.etcd.endpoints.entries()) {
      const host = hostOf(endpoint);
      if (host !== undefined && needsClusterDns(host)) {
        warnings.push(
          `network.etcd.endpoints[${i}]: ${host} is a cluster DNS name, but cluster DNS runs in pods that need this CNI to start: ` +
            'a new cluster (or a node after a DNS outage) cannot create any pod. Use addresses or names the node resolves itself (/etc/hosts, the data-centre DNS).',
        );
      }
    }
  }
  return warnings;
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

// Service and pod names: <svc>.<ns>.svc[.<cluster domain>]. A cluster domain other than
// cluster.local still carries the ".svc." label.
const needsClusterDns = (host: string) => /\.svc(\.|$)/.test(host) || host.endsWith('.cluster.local');
