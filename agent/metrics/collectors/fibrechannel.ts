import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, NoDataError } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';
import { parseUint } from './sysfs-parse.ts';

const INFO = family(
  'node_fibrechannel_info',
  'gauge',
  'Non-numeric data from /sys/class/fc_host/<host>, value is always 1.',
);

const counter = (file: string, name: string, help: string): [string, Family] => [
  file,
  family(`node_fibrechannel_${name}`, 'counter', help),
];

/** statistics/<file> → family, in node_exporter's order. */
// biome-ignore format: one counter per line, as node_exporter lists them
const COUNTERS: [file: string, family: Family][] = [
  counter('dumped_frames', 'dumped_frames_total', 'Number of dumped frames'),
  counter('error_frames', 'error_frames_total', 'Number of errors in frames'),
  counter('invalid_crc_count', 'invalid_crc_total', 'Invalid Cyclic Redundancy Check count'),
  counter('rx_frames', 'rx_frames_total', 'Number of frames received'),
  counter('rx_words', 'rx_words_total', 'Number of words received by host port'),
  counter('tx_frames', 'tx_frames_total', 'Number of frames transmitted by host port'),
  counter('tx_words', 'tx_words_total', 'Number of words transmitted by host port'),
  counter('seconds_since_last_reset', 'seconds_since_last_reset_total', 'Number of seconds since last host port reset'),
  counter('invalid_tx_word_count', 'invalid_tx_words_total', 'Number of invalid words transmitted by host port'),
  counter('link_failure_count', 'link_failure_total', 'Number of times the host port link has failed'),
  counter('loss_of_sync_count', 'loss_of_sync_total', 'Number of failures on either bit or transmission word boundaries'),
  counter('loss_of_signal_count', 'loss_of_signal_total', 'Number of times signal has been lost'),
  counter('nos_count', 'nos_total', 'Number Not_Operational Primitive Sequence received by host port'),
  counter('fcp_packet_aborts', 'fcp_packet_aborts_total', 'Number of aborted packets'),
];

/** What the HBA prints for a counter its firmware does not keep (-1 as a u64): left out. */
const NOT_IMPLEMENTED = 2n ** 64n - 1n;

/** The WWNs and port ID are printed 0x-prefixed; node_exporter labels them without. */
const hex = (value: string | undefined) => (value !== undefined && value.length > 2 ? value.slice(2) : value);

/**
 * /sys/class/fc_host/hostN: attributes as node_fibrechannel_info labels ("" for one the driver
 * does not expose), statistics/* (hex) as counters.
 */
export function createFibrechannelCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/class/fc_host`;
  return {
    families: [INFO, ...COUNTERS.map(([, f]) => f)],
    async collect(emit) {
      const hosts = listDir(root);
      // No FC HBA driver loaded (qla2xxx, lpfc).
      if (hosts === undefined) throw new NoDataError(`${root} does not exist`);
      for (const fc_host of hosts) {
        const dir = `${root}/${fc_host}`;
        const attribute = (name: string) => readAttribute(`${dir}/${name}`);
        const portState = attribute('port_state');
        emit(INFO, 1, {
          dev_loss_tmo: attribute('dev_loss_tmo') ?? '',
          fabric_name: hex(attribute('fabric_name')) ?? '',
          fc_host,
          port_id: hex(attribute('port_id')) ?? '',
          port_name: hex(attribute('port_name')) ?? '',
          port_state: portState ?? '',
          port_type: attribute('port_type') ?? '',
          speed: attribute('speed') ?? '',
          supported_classes: attribute('supported_classes') ?? '',
          supported_speeds: attribute('supported_speeds') ?? '',
          symbolic_name: attribute('symbolic_name') ?? '',
        });
        const labels = { fc_host };
        // A disabled host has no statistics: node_exporter reports its counters as 0.
        if (portState === undefined || portState === 'Unknown') {
          for (const [, f] of COUNTERS) emit(f, 0, labels);
          continue;
        }
        for (const [file, f] of COUNTERS) {
          // A counter the driver does not expose (or a write-only file) is left out.
          const text = readAttribute(`${dir}/statistics/${file}`);
          if (text === undefined) continue;
          const value = parseUint(text);
          if (value === undefined) throw new Error(`${dir}/statistics/${file}: not a number: ${text}`);
          if (value !== NOT_IMPLEMENTED) emit(f, Number(value), labels);
        }
      }
    },
  };
}
