import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchPodList, podInfoOf } from '../../shared/pods/index.ts';
import { skipReason } from './bin.ts';
import { CONTAINERD_BINARIES, type Containerd, startContainerd } from './containerd.ts';
import { existingCgroupDirs } from './cri/cgroups.ts';
import { type LabCniNetwork, startLabCniNetwork } from './cri/cni.ts';
import { type KubeletLite, type LitePod, startKubeletLite } from './kubelet-lite.ts';
import { mountsUnder } from './mounts.ts';
import { processTable } from './procs.ts';
import { Lab } from './scope.ts';
import { waitFor } from './wait.ts';

const reason = skipReason({
  root: true,
  binaries: [...CONTAINERD_BINARIES],
});
if (reason) console.warn(`[lab] containerd tests skipped: ${reason} (install containerd busybox-static)`);

/** One CRI log line: `<time> <stream> <P|F> <text>`. */
interface CriLine {
  time: string;
  stream: string;
  tag: string;
  text: string;
}

function criLines(content: string): CriLine[] {
  return content
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/.exec(l);
      if (!m) throw new Error(`not a CRI log line: ${l.slice(0, 120)}`);
      return { time: m[1]!, stream: m[2]!, tag: m[3]!, text: m[4]! };
    });
}

/** Whole lines of one stream (P parts joined with their F). */
function joined(lines: readonly CriLine[], stream: string): string[] {
  const out: string[] = [];
  let partial = '';
  for (const l of lines.filter((x) => x.stream === stream)) {
    partial += l.text;
    if (l.tag === 'F') {
      out.push(partial);
      partial = '';
    }
  }
  return out;
}

const seqOf = (line: string) => Number(line.split(' ')[2]);

describe('containerd + kubelet-lite lab', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  let net: LabCniNetwork;
  let containerd: Containerd;
  let kubelet: KubeletLite;
  let web: LitePod;
  let db: LitePod;
  const vethsSeen = new Set<string>();

  it.skipIf(reason)(
    'runs pods over CRI: IP, CRI logs with partial lines, symlinks, /pods with owners',
    async () => {
      const t0 = Date.now();
      net = await startLabCniNetwork({ lab });
      containerd = await startContainerd({ lab, cniBinDir: net.binDir, cniConfDir: net.confDir });
      kubelet = await startKubeletLite({
        lab,
        containerd,
        rotation: { maxSize: 64 * 1024, maxFiles: 3 },
        sandboxRetry: { attempts: 3, delayMs: 100 },
      });
      const tUp = Date.now();

      // The CNI chain fails the first ADD with "try again later" (code 11): kubelet-lite retries.
      await net.failNextAdds(1);
      web = await kubelet.runPod({
        namespace: 'shop',
        owner: { kind: 'Deployment', name: 'web' },
        labels: { app: 'web' },
        annotations: { 'example.com/team': 'checkout' },
        portMappings: [{ containerPort: 8080, hostPort: 30000 + Math.floor(Math.random() * 20000) }],
        containers: [
          {
            name: 'app',
            // 50 lines/s per stream until stopped, every 10th one 40000 bytes long.
            env: {
              LINES: '0',
              RATE: '50',
              LENGTH: '200',
              LONG_EVERY: '10',
              LONG_LENGTH: '40000',
              PREFIX: 'web',
            },
          },
        ],
      });
      const tWeb = Date.now();
      db = await kubelet.runPod({
        namespace: 'shop',
        owner: { kind: 'StatefulSet', name: 'db' },
        containers: [{ name: 'db', env: { LINES: '3', RATE: '0', PREFIX: 'db' } }],
      });
      expect(web.sandboxAttempts).toBe(2);
      expect(web.sandboxErrors[0]).toContain('lab spy: try again later');
      expect(db.sandboxAttempts).toBe(1);

      // The address from PodSandboxStatus is in the network's subnet, on the bridge's veth.
      for (const pod of [web, db]) {
        expect(pod.ip.startsWith(net.gateway.replace(/\.1$/, '.'))).toBe(true);
        expect(pod.ip).not.toBe(net.gateway);
        expect(pod.netns && existsSync(pod.netns)).toBe(true);
      }
      const veths = execFileSync('ip', ['-o', 'link', 'show', 'master', net.bridge], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(': ')[1]!.split('@')[0]!);
      expect(veths).toHaveLength(2);
      for (const v of veths) vethsSeen.add(v);

      // What CNI heard: pod identity in CNI_ARGS, port mappings and annotations as runtimeConfig.
      const adds = net.calls().filter((c) => c.command === 'ADD' && c.args['K8S_POD_NAME'] === web.name);
      expect(adds).toHaveLength(2);
      expect(adds[1]!.args['K8S_POD_UID']).toBe(web.uid);
      expect(adds[1]!.runtimeConfig?.['portMappings']).toEqual([
        expect.objectContaining({ ContainerPort: 8080, Protocol: 'tcp' }),
      ]);
      expect(adds[1]!.runtimeConfig?.['io.kubernetes.cri.pod-annotations']).toMatchObject({
        'example.com/team': 'checkout',
      });

      // CRI log format; the 40000-byte lines arrive as 16 KiB P parts and an F.
      const app = web.containers[0]!;
      expect(app.logPath).toBe(`${web.logDir}/app/0.log`);
      expect(basename(web.logDir)).toBe(`shop_${web.name}_${web.uid}`);
      await waitFor(() => joined(criLines(readFileSync(app.logPath, 'utf8')), 'stderr').length >= 12, {
        what: 'twelve stderr lines in 0.log',
      });
      const lines = criLines(readFileSync(app.logPath, 'utf8'));
      for (const stream of ['stdout', 'stderr']) {
        const whole = joined(lines, stream);
        expect(whole.slice(0, 12).map(seqOf)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        expect(whole[9]).toHaveLength(40000);
        expect(whole[9]!.startsWith(`web ${stream} 000010 xxx`)).toBe(true);
        expect(whole[0]).toHaveLength(200);
      }
      const parts = lines.filter((l) => l.stream === 'stdout' && l.tag === 'P');
      expect(parts[0]!.text).toHaveLength(16384);
      expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

      // The kubelet's /var/log/containers symlink.
      expect(basename(app.symlink)).toBe(`${web.name}_shop_app-${app.id}.log`);
      expect(dirname(app.symlink)).toBe(kubelet.containerLogRoot);
      expect(readlinkSync(app.symlink)).toBe(app.logPath);

      // /pods as the agent's pod source reads it: token, owners, container ids, pod IP.
      const list = await fetchPodList({
        url: kubelet.url,
        tokenFile: kubelet.tokenFile,
        caFile: '',
        insecureSkipVerify: false,
        timeout: 2000,
      });
      const infos = (list.items ?? []).map(podInfoOf);
      const webInfo = infos.find((p) => p?.uid === web.uid);
      const dbInfo = infos.find((p) => p?.uid === db.uid);
      expect(webInfo?.owners.deployment).toBe('web');
      expect(webInfo?.owners.replicaset).toMatch(/^web-[a-z0-9]{10}$/);
      expect(webInfo?.labels).toMatchObject({ app: 'web' });
      expect(webInfo?.annotations).toMatchObject({ 'example.com/team': 'checkout' });
      expect(webInfo?.containers).toEqual([
        { name: 'app', id: app.id, restartCount: 0, image: containerd.workloadImage },
      ]);
      expect(dbInfo?.owners).toEqual({ statefulset: 'db' });
      expect(dbInfo?.name).toBe('db-0');
      const webV1 = list.items?.find((p) => p.metadata?.uid === web.uid) as { status?: { podIP?: string } };
      expect(webV1.status?.podIP).toBe(web.ip);
      expect((await fetch(kubelet.url)).status).toBe(401);

      console.log(
        `[lab] containerd+kubelet-lite up ${tUp - t0} ms, first pod (with one CNI retry) ${tWeb - tUp} ms`,
      );
    },
  );

  it.skipIf(reason)('rotates logs as the kubelet: rename, ReopenContainerLog, gzip the older', async () => {
    const app = web.containers[0]!;
    const bigEnough = () => readFileSync(app.logPath).length >= 64 * 1024;
    await waitFor(bigEnough, { what: '0.log to pass 64 KiB', timeoutMs: 20_000 });
    const [first] = await kubelet.rotateLogs();
    expect(first?.containerId).toBe(app.id);
    expect(basename(first!.rotated)).toMatch(/^0\.log\.\d{8}-\d{6}$/);
    // containerd made a new 0.log at ReopenContainerLog, and writes there.
    await waitFor(() => existsSync(app.logPath) && criLines(readFileSync(app.logPath, 'utf8')).length > 0, {
      what: 'lines in the new 0.log',
    });

    await waitFor(bigEnough, { what: 'the new 0.log to pass 64 KiB', timeoutMs: 20_000 });
    const [second] = await kubelet.rotateLogs();
    expect(second!.rotated).not.toBe(first!.rotated);
    const files = readdirSync(dirname(app.logPath)).sort();
    expect(files).toEqual(['0.log', `${basename(first!.rotated)}.gz`, basename(second!.rotated)]);

    // No line lost or doubled across the two rotations.
    const content = [
      gunzipSync(readFileSync(`${first!.rotated}.gz`)).toString(),
      readFileSync(second!.rotated, 'utf8'),
      readFileSync(app.logPath, 'utf8').replace(/[^\n]*$/, ''),
    ].join('');
    for (const stream of ['stdout', 'stderr']) {
      const seqs = joined(criLines(content), stream).map(seqOf);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
  });

  it.skipIf(reason)('stop and remove leave no sandbox, netns, veth, mount or pod cgroup', async () => {
    const pods = [web, db];
    for (const pod of pods) await kubelet.removePod(pod);
    expect((await containerd.cri.call('ListPodSandbox', {})).items).toEqual([]);
    expect((await kubelet.podList()).items).toEqual([]);
    for (const pod of pods) {
      expect(existsSync(pod.netns!)).toBe(false);
      expect(existingCgroupDirs(pod.cgroupParent)).toEqual([]);
      expect(existsSync(pod.logDir)).toBe(false);
      for (const c of pod.containers) expect(existsSync(c.symlink)).toBe(false);
    }
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    for (const v of vethsSeen) expect(links).not.toContain(`${v}@`);
    expect(mountsUnder(containerd.dir)).toEqual([]);

    // containerd calls DEL at StopPodSandbox with the netns, and again at RemovePodSandbox without.
    const dels = net.calls().filter((c) => c.command === 'DEL' && c.args['K8S_POD_NAME'] === db.name);
    expect(dels.map((d) => [d.netns !== '', d.hasPrevResult])).toEqual([
      [true, true],
      [false, false],
    ]);
  });

  it.skipIf(reason)('lab cleanup stops containerd and removes what the lab made', async () => {
    const dirs = [containerd.dir, net.binDir, kubelet.logRoot];
    await lab.cleanup();
    for (const d of dirs) expect(existsSync(d)).toBe(false);
    expect(processTable().filter((p) => p.state !== 'Z' && p.cmdline.includes(containerd.dir))).toEqual([]);
    expect(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })).not.toContain(`${net.bridge}:`);
    const results = existsSync('/var/lib/cni/results') ? readdirSync('/var/lib/cni/results') : [];
    expect(results.filter((f) => f.startsWith(`${net.name}-`))).toEqual([]);
  });
});
