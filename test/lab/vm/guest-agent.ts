/**
 * The CNI agent of a lab VM "node", as a process of its own (the guest daemon starts it): the
 * project's startCniAgent against the lab's etcd, with the network module on the VM's NIC.
 * argv[2]: JSON {etcd, prefix, node, cni}. JSON lines on stdin/stdout (rpc.ts): `{ready}` once the
 * socket serves, then health / tick / idle / pools.add; SIGTERM stops it cleanly, SIGKILL is a crash. Logs on
 * stderr.
 */
import { startCniAgent } from '../../../ipam-cni/cni/agent.ts';
import { Ipam } from '../../../ipam-cni/ipam/ipam.ts';
import { addPool } from '../../../ipam-cni/ipam/pools.ts';
import { EtcdStore } from '../../../ipam-cni/store/etcd.ts';
import { cniSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import { serveLines } from './rpc.ts';

const o = JSON.parse(process.argv[2] ?? '{}') as { etcd: string; prefix: string; node: string; cni: unknown };
const log = createLogger('info');
const store = await EtcdStore.open({
  endpoints: [o.etcd],
  prefix: o.prefix,
  dialTimeoutMs: 5000,
  // TCG: everything runs ≈ 10× slower than on the host.
  requestTimeoutMs: 20_000,
});
const started = performance.now();
const agent = await startCniAgent({
  cni: cniSchema.parse(o.cni),
  store,
  node: o.node,
  ipam: new Ipam({ store, log }),
  log,
});
const send = (line: string) => process.stdout.write(line);
serveLines(process.stdin, send, {
  health: () => agent.health(),
  tick: async () => {
    await agent.tick();
    return agent.health();
  },
  /** Waits until the DELs answered so far are torn down (DEL answers before its teardown). */
  idle: () => agent.handlers.teardowns.idle().then(() => true),
  /** IPAM pools, as an operator adds them (the agent's store is at hand). */
  'pools.add': async (a: { pools: Parameters<typeof addPool>[1][] }) => {
    for (const p of a.pools) await addPool(store, p);
    return a.pools.length;
  },
});
send(
  `${JSON.stringify({
    ready: {
      pid: process.pid,
      replayed: agent.replayed,
      segments: agent.segments.ensuredCount,
      ms: performance.now() - started,
    },
  })}\n`,
);
process.once('SIGTERM', () => {
  void agent
    .stop()
    .then(() => store.close())
    .catch((err: unknown) => log.error({ err }, 'lab agent: stop failed'))
    .finally(() => process.exit(0));
});
