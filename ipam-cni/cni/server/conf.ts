import { z } from 'zod';
import { CNI, NodewardError } from '../../../shared/errors.ts';
import { CniError, type CniVersion, isSupportedVersion, PLUGIN_TYPE } from '../spec.ts';

/**
 * The network config the runtime passed (stdin of the shim), as the agent reads it. Loose on
 * purpose: runtimes add keys (runtimeConfig, prevResult, capabilities…), and the spec says unknown
 * keys are ignored.
 */

const annotations = z.record(z.string(), z.string());

export const netConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.string().min(1),
  type: z.string().min(1),
  pool: z.string().optional(),
  mtu: z.int().min(576).max(65_535).optional(),
  ipam: z.looseObject({ type: z.string().optional(), pool: z.string().optional() }).optional(),
  runtimeConfig: z
    .looseObject({
      ips: z.array(z.string()).optional(),
      'io.kubernetes.cri.pod-annotations': annotations.optional(),
    })
    .optional(),
  prevResult: z.unknown().optional(),
  'cni.dev/valid-attachments': z
    .array(z.looseObject({ containerID: z.string(), ifname: z.string() }))
    .optional(),
});
export type NetConf = z.output<typeof netConfSchema>;

export function parseNetConf(text: string): NetConf {
  const r = netConfSchema.safeParse(JSON.parse(text));
  if (!r.success) {
    throw new NodewardError(
      'CNI_CONFIG_INVALID',
      `network config: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return r.data;
}

/**
 * Main plugin (type nodeward: bridge, veth, addresses) or IPAM plugin under another main plugin
 * (macvlan, ipvlan… with ipam.type nodeward: addresses only).
 */
export const isIpamOnly = (conf: NetConf): boolean => conf.type !== PLUGIN_TYPE;

/** The config's cniVersion, when this agent speaks it. */
export function versionOf(conf: NetConf): CniVersion {
  if (!isSupportedVersion(conf.cniVersion)) {
    throw new CniError(CNI.incompatibleVersion, `cniVersion ${conf.cniVersion} is not supported`);
  }
  return conf.cniVersion;
}
