import { z } from 'zod';

/** The `network` section: CNI server and IPAM (ipam-cni/). */
export const networkSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .describe(
      'Serve the CNI plugin and IPAM (needs root and a network to manage; off in the embedded default).',
    ),
});
