import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { skipReason } from './bin.ts';
import { cgroupDirsOfPid } from './cgroup.ts';
import { importBusybox, startDockerd } from './docker.ts';
import { mountsUnder } from './mounts.ts';
import { processTable } from './procs.ts';
import { Lab } from './scope.ts';
import { waitFor } from './wait.ts';

const reason = skipReason({ root: true, binaries: ['dockerd', 'containerd', 'busybox', 'tar', 'umount'] });
if (reason) console.warn(`[lab] docker tests skipped: ${reason} (install docker.io busybox-static)`);

describe('docker lab', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)('runs a busybox container in its own cgroup, and leaves nothing behind', async () => {
    const dockerd = await startDockerd({ lab });
    await importBusybox(dockerd.socketPath);
    const id = (
      await dockerd.docker(['run', '--detach', '--network', 'none', 'local/busybox', 'sleep', '300'])
    ).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const pid = Number(await dockerd.docker(['inspect', '--format', '{{.State.Pid}}', id]));
    expect(pid).toBeGreaterThan(0);

    // cgroupfs driver: v1 puts the container at <controller>/docker/<id>, v2 at docker/<id>.
    const dirs = cgroupDirsOfPid(pid);
    expect(dirs.length).toBeGreaterThan(0);
    for (const dir of dirs) {
      expect(dir).toMatch(new RegExp(`/docker/${id}$|/docker-${id}\\.scope$`));
      expect(existsSync(dir)).toBe(true);
    }

    await dockerd.docker(['rm', '--force', id]);
    await waitFor(() => dirs.every((dir) => !existsSync(dir)), { what: 'the container cgroups to go' });
    expect(existsSync(`/proc/${pid}`)).toBe(false);

    await dockerd.stop();
    // A clean stop unmounts everything dockerd mounted and leaves no containerd or shim running.
    expect(mountsUnder(dockerd.dir)).toEqual([]);
    expect(processTable().filter((p) => p.state !== 'Z' && p.cmdline.includes(dockerd.dir))).toEqual([]);
  });
});
