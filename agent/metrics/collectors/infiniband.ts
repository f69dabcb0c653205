import { existsSync } from 'node:fs';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, type Labels, NoDataError } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';
import { parseUint } from './sysfs-parse.ts';

const INFO = family(
  'node_infiniband_info',
  'gauge',
  'Non-numeric data from /sys/class/infiniband/<device>, value is always 1.',
);
const STATE = family(
  'node_infiniband_state_id',
  'gauge',
  'State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)',
);
const PHYSICAL_STATE = family(
  'node_infiniband_physical_state_id',
  'gauge',
  'Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)',
);
const RATE = family('node_infiniband_rate_bytes_per_second', 'gauge', 'Maximum signal transfer rate');
const LIFESPAN = family(
  'node_infiniband_lifespan_seconds',
  'gauge',
  'The maximum period in ms which defines the aging of the counter reads. Two consecutive reads within this period might return the same values.',
);

const counter = (file: string, name: string, help: string): [string, Family] => [
  file,
  family(`node_infiniband_${name}`, 'counter', help),
];
const OFED = 'The counters was added in MLNX_OFED 4.1';
const OFED5 = 'The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0';

/**
 * <file> → family of the port's counters/ (kernel 2.6.12), counters_ext/ (64-bit counters before
 * 4.5) and hw_counters/ (4.6, mlx5 and other RoCE drivers), in node_exporter's order.
 */
type Counters = [file: string, family: Family][];

// biome-ignore format: one counter per line, as node_exporter lists them
const COUNTERS_EXT: Counters = [
  counter('port_multicast_rcv_packets', 'legacy_multicast_packets_received_total', 'Number of multicast packets received'),
  counter('port_multicast_xmit_packets', 'legacy_multicast_packets_transmitted_total', 'Number of multicast packets transmitted'),
  counter('port_rcv_data_64', 'legacy_data_received_bytes_total', 'Number of data octets received on all links'),
  counter('port_rcv_packets_64', 'legacy_packets_received_total', 'Number of data packets received on all links'),
  counter('port_unicast_rcv_packets', 'legacy_unicast_packets_received_total', 'Number of unicast packets received'),
  counter('port_unicast_xmit_packets', 'legacy_unicast_packets_transmitted_total', 'Number of unicast packets transmitted'),
  counter('port_xmit_data_64', 'legacy_data_transmitted_bytes_total', 'Number of data octets transmitted on all links'),
  // node_exporter's help says "received" for this one too.
  counter('port_xmit_packets_64', 'legacy_packets_transmitted_total', 'Number of data packets received on all links'),
];

// biome-ignore format: one counter per line, as node_exporter lists them
const COUNTERS: Counters = [
  counter('excessive_buffer_overrun_errors', 'excessive_buffer_overrun_errors_total', 'Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.'),
  counter('link_downed', 'link_downed_total', 'Number of times the link failed to recover from an error state and went down'),
  counter('link_error_recovery', 'link_error_recovery_total', 'Number of times the link successfully recovered from an error state'),
  counter('local_link_integrity_errors', 'local_link_integrity_errors_total', 'Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.'),
  counter('multicast_rcv_packets', 'multicast_packets_received_total', 'Number of multicast packets received (including errors)'),
  counter('multicast_xmit_packets', 'multicast_packets_transmitted_total', 'Number of multicast packets transmitted (including errors)'),
  counter('port_rcv_constraint_errors', 'port_constraint_errors_received_total', 'Number of packets received on the switch physical port that are discarded'),
  counter('port_xmit_constraint_errors', 'port_constraint_errors_transmitted_total', 'Number of packets not transmitted from the switch physical port'),
  counter('port_rcv_data', 'port_data_received_bytes_total', 'Number of data octets received on all links'),
  counter('port_xmit_data', 'port_data_transmitted_bytes_total', 'Number of data octets transmitted on all links'),
  counter('port_rcv_discards', 'port_discards_received_total', 'Number of inbound packets discarded by the port because the port is down or congested'),
  counter('port_xmit_discards', 'port_discards_transmitted_total', 'Number of outbound packets discarded by the port because the port is down or congested'),
  counter('port_rcv_errors', 'port_errors_received_total', 'Number of packets containing an error that were received on this port'),
  counter('port_rcv_packets', 'port_packets_received_total', 'Number of packets received on all VLs by this port (including errors)'),
  counter('port_xmit_packets', 'port_packets_transmitted_total', 'Number of packets transmitted on all VLs from this port (including errors)'),
  counter('port_xmit_wait', 'port_transmit_wait_total', 'Number of ticks during which the port had data to transmit but no data was sent during the entire tick'),
  counter('unicast_rcv_packets', 'unicast_packets_received_total', 'Number of unicast packets received (including errors)'),
  counter('unicast_xmit_packets', 'unicast_packets_transmitted_total', 'Number of unicast packets transmitted (including errors)'),
  counter('port_rcv_remote_physical_errors', 'port_receive_remote_physical_errors_total', 'Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.'),
  counter('port_rcv_switch_relay_errors', 'port_receive_switch_relay_errors_total', 'Number of packets that could not be forwarded by the switch.'),
  counter('symbol_error', 'symbol_error_total', 'Number of minor link errors detected on one or more physical lanes.'),
  counter('VL15_dropped', 'vl15_dropped_total', 'Number of incoming VL15 packets dropped due to resource limitations.'),
];

// biome-ignore format: one counter per line, as node_exporter lists them
const HW_COUNTERS: Counters = [
  counter('duplicate_request', 'duplicate_requests_packets_total', 'The number of received packets. A duplicate request is a request that had been previously executed.'),
  counter('implied_nak_seq_err', 'implied_nak_seq_errors_total', 'The number of time the requested decided an ACK. with a PSN larger than the expected PSN for an RDMA read or response.'),
  counter('local_ack_timeout_err', 'local_ack_timeout_errors_total', "The number of times QP's ack timer expired for RC, XRC, DCT QPs at the sender side. The QP retry limit was not exceed, therefore it is still recoverable error."),
  counter('np_cnp_sent', 'np_cnp_packets_sent_total', `The number of CNP packets sent by the Notification Point when it noticed congestion experienced in the RoCEv2 IP header (ECN bits). ${OFED}`),
  counter('np_ecn_marked_roce_packets', 'np_ecn_marked_roce_packets_received_total', `The number of RoCEv2 packets received by the notification point which were marked for experiencing the congestion (ECN bits where '11' on the ingress RoCE traffic) . ${OFED}`),
  counter('out_of_buffer', 'out_of_buffer_drops_total', 'The number of drops occurred due to lack of WQE for the associated QPs.'),
  counter('out_of_sequence', 'out_of_sequence_packets_received_total', 'The number of out of sequence packets received.'),
  counter('packet_seq_err', 'packet_sequence_errors_total', 'The number of received NAK sequence error packets. The QP retry limit was not exceeded.'),
  counter('req_cqe_error', 'req_cqes_errors_total', `The number of times requester detected CQEs completed with errors. ${OFED}`),
  counter('req_cqe_flush_error', 'req_cqes_flush_errors_total', `The number of times requester detected CQEs completed with flushed errors. ${OFED}`),
  counter('req_remote_access_errors', 'req_remote_access_errors_total', `The number of times requester detected remote access errors. ${OFED}`),
  counter('req_remote_invalid_request', 'req_remote_invalid_request_errors_total', `The number of times requester detected remote invalid request errors. ${OFED}`),
  counter('resp_cqe_error', 'resp_cqes_errors_total', `The number of times responder detected CQEs completed with errors. ${OFED}`),
  counter('resp_cqe_flush_error', 'resp_cqes_flush_errors_total', `The number of times responder detected CQEs completed with flushed errors. ${OFED}`),
  counter('resp_local_length_error', 'resp_local_length_errors_total', `The number of times responder detected local length errors. ${OFED}`),
  counter('resp_remote_access_errors', 'resp_remote_access_errors_total', `The number of times responder detected remote access errors. ${OFED}`),
  counter('rnr_nak_retry_err', 'rnr_nak_retry_packets_received_total', 'The number of received RNR NAK packets. The QP retry limit was not exceeded.'),
  counter('roce_adp_retrans', 'roce_adp_retransmits_total', `The number of adaptive retransmissions for RoCE traffic. ${OFED5}`),
  counter('roce_adp_retrans_to', 'roce_adp_retransmits_timeout_total', `The number of times RoCE traffic reached timeout due to adaptive retransmission. ${OFED5}`),
  counter('roce_slow_restart', 'roce_slow_restart_used_total', `The number of times RoCE slow restart was used. ${OFED5}`),
  counter('roce_slow_restart_cnps', 'roce_slow_restart_cnps_total', `The number of times RoCE slow restart generated CNP packets. ${OFED5}`),
  counter('roce_slow_restart_trans', 'roce_slow_restart_total', `The number of times RoCE slow restart changed state to slow restart. ${OFED5}`),
  counter('rp_cnp_handled', 'rp_cnp_packets_handled_total', `The number of CNP packets handled by the Reaction Point HCA to throttle the transmission rate. ${OFED}`),
  counter('rp_cnp_ignored', 'rp_cnp_ignored_packets_received_total', 'The number of CNP packets received and ignored by the Reaction Point HCA. This counter should not raise if RoCE Congestion Control was enabled in the network. If this counter raise, verify that ECN was enabled on the adapter.'),
  counter('rx_atomic_requests', 'rx_atomic_requests_total', 'The number of received ATOMIC request for the associated QPs.'),
  counter('rx_dct_connect', 'rx_dct_connect_requests_total', 'The number of received connection requests for the associated DCTs.'),
  counter('rx_read_requests', 'rx_read_requests_total', 'The number of received READ requests for the associated QPs.'),
  counter('rx_write_requests', 'rx_write_requests_total', 'The number of received WRITE requests for the associated QPs.'),
  counter('rx_icrc_encapsulated', 'rx_icrc_encapsulated_errors_total', 'The number of RoCE packets with ICRC errors. This counter was added in MLNX_OFED 4.4 and kernel 4.19'),
];

/**
 * Mellanox counts data in 4-byte words per lane ("divided by 4 unconditionally"): procfs
 * multiplies these by 4 to get octets.
 */
const IN_WORDS = new Set(['port_rcv_data', 'port_xmit_data', 'port_rcv_data_64', 'port_xmit_data_64']);

/** A file node_exporter cannot do without: its absence means no data for the whole collector. */
function required(path: string): string {
  const text = readAttribute(path);
  if (text === undefined) throw new NoDataError(`${path} does not exist`);
  return text;
}

/** `4: ACTIVE` → 4. */
function stateId(path: string): number {
  const text = required(path);
  const parts = text.split(':');
  const id = parts.length === 2 ? parseUint(parts[0]!.trim(), 10) : undefined;
  if (id === undefined || id >= 2n ** 32n)
    throw new Error(`${path}: expected "ID: NAME", got ${JSON.stringify(text)}`);
  return Number(id);
}

/** `100 Gb/sec (4X EDR)` → bytes/s, with procfs's float32 parse and truncation. */
function rateBytes(path: string): number {
  const text = required(path);
  const space = text.indexOf(' ');
  const gbits = space < 0 ? Number.NaN : Number(text.slice(0, space).trim());
  if (!Number.isFinite(gbits)) throw new Error(`${path}: unexpected rate ${JSON.stringify(text)}`);
  return Math.trunc(Math.fround(gbits) * 125_000_000);
}

/**
 * The counters of one directory of a port, by file; "N/A (no PMA)" (old mlx4 firmware) and files
 * the driver does not have are left out.
 */
function readCounters(dir: string, files: readonly string[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const file of files) {
    const text = readAttribute(`${dir}/${file}`);
    if (text === undefined) continue;
    const value = parseUint(text);
    if (value !== undefined) out.set(file, IN_WORDS.has(file) ? value * 4n : value);
    else if (!text.includes('N/A (no PMA)'))
      throw new Error(`${dir}/${file}: not a number: ${JSON.stringify(text)}`);
  }
  return out;
}

const files = (counters: Counters) => counters.map(([file]) => file);
const EXT_FILES = files(COUNTERS_EXT);
const COUNTER_FILES = files(COUNTERS);
const HW_FILES = ['lifespan', ...files(HW_COUNTERS)];

/**
 * /sys/class/infiniband/<device>: the HCA's identity, and per port its state, rate and counters.
 * Devices renamed by systemd (ibp…) hide their driver, so every counter directory present is read.
 */
export function createInfinibandCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/class/infiniband`;
  return {
    families: [
      INFO,
      STATE,
      PHYSICAL_STATE,
      RATE,
      ...COUNTERS_EXT.map(([, f]) => f),
      ...COUNTERS.map(([, f]) => f),
      LIFESPAN,
      ...HW_COUNTERS.map(([, f]) => f),
    ],
    async collect(emit) {
      const devices = listDir(root);
      if (devices === undefined) throw new NoDataError(`${root} does not exist`);
      // Emitted once every device has been read: a missing file found halfway means no data at all.
      const samples: [Family, number, Labels][] = [];
      const add = (counters: Counters, values: Map<string, bigint>, labels: Labels) => {
        for (const [file, f] of counters) {
          const value = values.get(file);
          if (value !== undefined) samples.push([f, Number(value), labels]);
        }
      };
      for (const device of devices) {
        const dir = `${root}/${device}`;
        // fw_ver is exposed by every driver since Linux 4.10; board_id and hca_type not by all.
        samples.push([
          INFO,
          1,
          {
            board_id: readAttribute(`${dir}/board_id`) ?? '',
            device,
            firmware_version: required(`${dir}/fw_ver`),
            hca_type: readAttribute(`${dir}/hca_type`) ?? '',
          },
        ]);
        const ports = listDir(`${dir}/ports`);
        if (ports === undefined) throw new NoDataError(`${dir}/ports does not exist`);
        for (const portDir of ports) {
          const number = parseUint(portDir, 10);
          if (number === undefined || number >= 2n ** 32n)
            throw new Error(`${dir}/ports/${portDir}: not a port number`);
          const path = `${dir}/ports/${portDir}`;
          const labels = { device, port: String(number) };
          required(`${path}/link_layer`);
          samples.push([STATE, stateId(`${path}/state`), labels]);
          samples.push([PHYSICAL_STATE, stateId(`${path}/phys_state`), labels]);
          samples.push([RATE, rateBytes(`${path}/rate`), labels]);
          if (existsSync(`${path}/counters`)) {
            add(COUNTERS_EXT, readCounters(`${path}/counters_ext`, EXT_FILES), labels);
            add(COUNTERS, readCounters(`${path}/counters`, COUNTER_FILES), labels);
          }
          if (existsSync(`${path}/hw_counters`)) {
            const hw = readCounters(`${path}/hw_counters`, HW_FILES);
            const ms = hw.get('lifespan');
            // Whole seconds: node_exporter divides the milliseconds as integers.
            if (ms !== undefined) samples.push([LIFESPAN, Number(ms / 1000n), labels]);
            add(HW_COUNTERS, hw, labels);
          }
        }
      }
      for (const [f, value, labels] of samples) emit(f, value, labels);
    },
  };
}
