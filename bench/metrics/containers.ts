import type { Dockerd } from '../../test/lab/index.ts';

/**
 * `count` idle busybox containers named `<prefix>-<n>`, with the labels the kubelet puts on pod
 * containers (so they get pod/namespace/container labels), started ten at a time.
 */
export async function startIdleContainers(dockerd: Dockerd, count: number, prefix: string): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, count - i) }, (_, j) =>
        // biome-ignore format: one flag and its value per line
        dockerd.docker([
          'run', '--detach', '--network', 'none',
          '--name', `${prefix}-${i + j}`,
          '--label', `io.kubernetes.pod.name=${prefix}-${i + j}`,
          '--label', 'io.kubernetes.pod.namespace=bench',
          '--label', 'io.kubernetes.container.name=sleep',
          'local/busybox', 'sleep', '3600',
        ]),
      ),
    );
  }
}
