import { existsSync, readFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { Lab, waitFor } from '../lab/index.ts';
import {
  e2eSkipReason,
  LISTEN_PORT,
  listenAndLog,
  phases,
  podAddresses,
  randomSuffix,
  startNode,
  waitTcpOk,
} from './node.ts';

/**
 * Scenario 7, the conflist as the DaemonSet has it: the init container installs only the shim
 * (`cni install --no-conflist`), the agent writes the conflist once it is ready and removes it
 * when it is stopped (SIGTERM). containerd's CRI watches the directory: while there is none it
 * reports NetworkReady false and refuses sandboxes, which the kubelet retries; a pod already
 * running keeps its address and answers throughout; once an agent is ready again the waiting pod
 * starts.
 */

const reason = e2eSkipReason();
if (reason) console.warn(`[e2e] conflist skipped: ${reason}`);
const lab = new Lab();
afterAll(() => lab.cleanup(), 300_000);

it.skipIf(reason)(
  'the node takes pods only while an agent is ready: conflist written when ready, removed on SIGTERM',
  async () => {
    const t = phases('conflist');
    const node = await startNode({
      lab,
      agentWritesConflist: true,
      // The kubelet retries a refused sandbox on its next sync; allow for the agent's downtime.
      sandboxRetry: { attempts: 200, delayMs: 100 },
    });
    t.mark('node up');
    expect(node.installOutput.trim().split('\n')).toEqual([`${node.binDir}/nodeward: installed`]);
    // Written by the agent (it was ready before startNode returned), with the chained plugins it found.
    const conflist = JSON.parse(readFileSync(node.conflistPath, 'utf8')) as { plugins: { type: string }[] };
    expect(conflist.plugins.map((p) => p.type)).toEqual(['nodeward', 'portmap', 'bandwidth']);
    await waitFor(async () => (await node.networkReady()).ready, { what: 'containerd NetworkReady' });

    const namespace = `conflist-${randomSuffix()}`;
    const running = await node.kubelet.runPod({
      namespace,
      name: 'before',
      containers: [{ name: 'app', command: listenAndLog(), env: { LINES: '0' } }],
    });
    const [address] = await podAddresses(running);
    expect(address).toBeDefined();
    await waitTcpOk(address!, LISTEN_PORT, 'the running pod');
    t.mark('a pod running');

    // The agent stopped as the kubelet stops it (upgrade, uninstall): no conflist, no new pods.
    await node.stopAgent();
    expect(existsSync(node.conflistPath)).toBe(false);
    await waitFor(async () => !(await node.networkReady()).ready, {
      what: 'containerd to report the network not ready',
    });
    const down = await node.networkReady();
    t.mark('agent stopped, network not ready');
    const stoppedAt = Date.now();
    const waiting = node.kubelet.runPod({ namespace, name: 'after', containers: [{ name: 'app' }] });
    // Refused while no agent runs: the kubelet's retries pile up, nothing starts.
    await new Promise((r) => setTimeout(r, 2000));
    const made = [...node.kubelet.pods.values()].filter((p) => p.namespace === namespace);
    expect(made.map((p) => [p.name, p.phase])).toEqual([
      ['before', 'Running'],
      ['after', 'Pending'],
    ]);
    // The running pod is not touched.
    expect(await podAddresses(running)).toEqual([address]);
    await waitTcpOk(address!, LISTEN_PORT, 'the running pod while the agent is down', 10_000);

    await node.startAgent();
    const after = await waiting;
    const waited = Date.now() - stoppedAt;
    t.mark(`agent back; the waiting pod started after ${after.sandboxAttempts} attempts`);
    expect(existsSync(node.conflistPath)).toBe(true);
    expect((await node.networkReady()).ready).toBe(true);
    expect(after.sandboxAttempts).toBeGreaterThan(1);
    expect((await podAddresses(after)).length).toBe(1);
    expect(await podAddresses(running)).toEqual([address]);
    console.info(
      `[e2e] conflist: NetworkReady false while stopped (${down.message.slice(0, 80)}); a pod made then waited ${(waited / 1000).toFixed(1)} s, ${after.sandboxAttempts} sandbox attempts`,
    );
    expect((await node.ipamCheck()).problems).toEqual([]);
  },
  240_000,
);
