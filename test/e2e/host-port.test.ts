import { readFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { freePort, Lab, runOk, waitFor } from '../lab/index.ts';
import {
  e2eSkipReason,
  LISTEN_PORT,
  listenAndLog,
  phases,
  randomSuffix,
  startNode,
  tcpRead,
  waitTcpOk,
} from './node.ts';

/**
 * Scenario 3, hostPort: `cni install` chained the reference portmap plugin after ours (it found it
 * in the bin dir); containerd hands it the pod's port mappings; a connection to the host port on
 * 127.0.0.1 reaches the pod's listener. Only loopback is mapped: nothing outside this machine can
 * send traffic to it.
 */

const reason = e2eSkipReason();
if (reason) console.warn(`[e2e] hostPort skipped: ${reason}`);
const lab = new Lab();
afterAll(() => lab.cleanup(), 300_000);

it.skipIf(reason)(
  'a pod with a hostPort on 127.0.0.1 answers there; the mapping goes with the pod',
  async () => {
    const t = phases('hostPort');
    const node = await startNode({ lab });
    t.mark('node up');
    const conflist = JSON.parse(readFileSync(node.conflistPath, 'utf8')) as { plugins: { type: string }[] };
    expect(conflist.plugins.map((p) => p.type)).toEqual(['nodeward', 'portmap', 'bandwidth']);

    const hostPort = await freePort();
    const pod = await node.kubelet.runPod({
      namespace: `hostport-${randomSuffix()}`,
      owner: { kind: 'Deployment', name: 'web' },
      portMappings: [{ containerPort: LISTEN_PORT, hostPort, hostIp: '127.0.0.1' }],
      containers: [{ name: 'app', command: listenAndLog(), env: { LINES: '1', RATE: '0' } }],
    });
    expect(node.pools[0]!.contains(pod.ip)).toBe(true);
    await waitTcpOk('127.0.0.1', hostPort, `hostPort 127.0.0.1:${hostPort} of pod ${pod.name}`);
    // The same listener answers on the pod's own address.
    await waitTcpOk(pod.ip, LISTEN_PORT, `pod ${pod.name} at ${pod.ip}`);
    const dnat = await runOk('iptables', ['-w', '-t', 'nat', '-S']);
    expect(dnat).toMatch(
      new RegExp(
        `-d 127\\.0\\.0\\.1/32 .*--dport ${hostPort} .*--to-destination ${pod.ip.replaceAll('.', '\\.')}:${LISTEN_PORT}`,
      ),
    );

    t.mark('pod made, checked');
    await node.kubelet.removePod(pod);
    // portmap's DEL removed the DNAT: nothing listens on the host port any more.
    await waitFor(
      async () => !(await runOk('iptables', ['-w', '-t', 'nat', '-S'])).includes(`--dport ${hostPort} `),
      {
        what: `the DNAT of ${hostPort} to go`,
        timeoutMs: 60_000,
      },
    );
    await expect(tcpRead('127.0.0.1', hostPort)).rejects.toThrow(/ECONNREFUSED/);
    t.mark('removed, checked');
    t.report();
    console.info(`[e2e] ${node.setupTimes}`);
  },
  180_000,
);
