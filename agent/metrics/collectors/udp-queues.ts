import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family, NoDataError } from '../collector.ts';
import { fieldsOf, isAbsent, readKernelFileSync } from '../procfs.ts';

const QUEUES = family(
  'node_udp_queues',
  'gauge',
  'Number of allocated memory in the kernel for UDP datagrams in bytes.',
);

/** Sums the `tx_queue:rx_queue` column (hex bytes) of /proc/net/udp or udp6 over its sockets. */
export function parseUdpQueues(text: string, where: string): { tx: number; rx: number } {
  let tx = 0;
  let rx = 0;
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    if (lines[i]!.trim() === '') continue;
    const queues = fieldsOf(lines[i]!)[4]?.split(':');
    if (queues?.length !== 2)
      throw new Error(`${where}: no tx_queue:rx_queue in ${JSON.stringify(lines[i])}`);
    tx += Number.parseInt(queues[0]!, 16);
    rx += Number.parseInt(queues[1]!, 16);
  }
  if (!Number.isFinite(tx + rx)) throw new Error(`${where}: queue sizes are not hex`);
  return { tx, rx };
}

const LABELS = {
  v4: { tx: { ip: 'v4', queue: 'tx' }, rx: { ip: 'v4', queue: 'rx' } },
  v6: { tx: { ip: 'v6', queue: 'tx' }, rx: { ip: 'v6', queue: 'rx' } },
};

export function createUdpQueuesCollector(settings: MetricsConfig): Collector {
  return {
    families: [QUEUES],
    async collect(emit) {
      let absent = 0;
      for (const [ip, file] of [
        ['v4', 'udp'],
        ['v6', 'udp6'],
      ] as const) {
        let text: string;
        try {
          text = readKernelFileSync(settings.procRoot, `net/${file}`);
        } catch (err) {
          if (!isAbsent(err)) throw err;
          absent++;
          continue;
        }
        const { tx, rx } = parseUdpQueues(text, `/proc/net/${file}`);
        emit(QUEUES, tx, LABELS[ip].tx);
        emit(QUEUES, rx, LABELS[ip].rx);
      }
      if (absent === 2) throw new NoDataError('neither /proc/net/udp nor udp6');
    },
  };
}
