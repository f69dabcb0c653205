import { defineConfig } from 'vitest/config';

/**
 * `npm run test:vlan`: the VLAN uplink on a kernel with 802.1Q, two qemu VMs under TCG (this
 * machine's kernel has no 802.1Q). Apart from `npm test`: the VMs take both cores and ≈ 1.2 GB for
 * a few minutes, which would starve the lab tests running beside them. Files end in `.vmtest.ts`
 * so the default include never picks them up.
 */
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/vlan/**/*.vmtest.ts'],
    // Under TCG JS runs ≈ 10× slower and every process spawn ≈ 12×: generous, not shrunk asserts.
    testTimeout: 300_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
