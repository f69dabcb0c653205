import { type ChildProcess, spawn } from 'node:child_process';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, NoDataError } from '../collector.ts';

/**
 * node_exporter's timex collector. Its numbers are the answer of adjtimex(2), which Node cannot
 * call, so a small static program (agent/metrics/timex/nodeward-timex.c) makes the call with
 * modes = 0 and prints the fields as `name value` lines; it stays running between scrapes.
 */

const SYNC = family(
  'node_timex_sync_status',
  'gauge',
  'Is clock synchronized to a reliable server (1 = yes, 0 = no).',
);
const OFFSET = family(
  'node_timex_offset_seconds',
  'gauge',
  'Time offset in between local system and reference clock.',
);
const FREQ = family('node_timex_frequency_adjustment_ratio', 'gauge', 'Local clock frequency adjustment.');
const MAXERROR = family('node_timex_maxerror_seconds', 'gauge', 'Maximum error in seconds.');
const ESTERROR = family('node_timex_estimated_error_seconds', 'gauge', 'Estimated error in seconds.');
const STATUS = family('node_timex_status', 'gauge', 'Value of the status array bits.');
const CONSTANT = family('node_timex_loop_time_constant', 'gauge', 'Phase-locked loop time constant.');
const TICK = family('node_timex_tick_seconds', 'gauge', 'Seconds between clock ticks.');
const PPSFREQ = family('node_timex_pps_frequency_hertz', 'gauge', 'Pulse per second frequency.');
const JITTER = family('node_timex_pps_jitter_seconds', 'gauge', 'Pulse per second jitter.');
const SHIFT = family('node_timex_pps_shift_seconds', 'gauge', 'Pulse per second interval duration.');
const STABIL = family(
  'node_timex_pps_stability_hertz',
  'gauge',
  'Pulse per second stability, average of recent frequency changes.',
);
const JITCNT = family(
  'node_timex_pps_jitter_total',
  'counter',
  'Pulse per second count of jitter limit exceeded events.',
);
const CALCNT = family(
  'node_timex_pps_calibration_total',
  'counter',
  'Pulse per second count of calibration intervals.',
);
const ERRCNT = family(
  'node_timex_pps_error_total',
  'counter',
  'Pulse per second count of calibration errors.',
);
const STBCNT = family(
  'node_timex_pps_stability_exceeded_total',
  'counter',
  'Pulse per second count of stability limit exceeded events.',
);
const TAI = family('node_timex_tai_offset_seconds', 'gauge', 'International Atomic Time (TAI) offset.');

const FAMILIES = [
  SYNC,
  OFFSET,
  FREQ,
  MAXERROR,
  ESTERROR,
  STATUS,
  CONSTANT,
  TICK,
  PPSFREQ,
  JITTER,
  SHIFT,
  STABIL,
  JITCNT,
  CALCNT,
  ERRCNT,
  STBCNT,
  TAI,
];

/** What the helper prints: the return value of adjtimex (`state`) and the fields of struct timex. */
const FIELDS = [
  'state',
  'offset',
  'freq',
  'maxerror',
  'esterror',
  'status',
  'constant',
  'tick',
  'ppsfreq',
  'jitter',
  'shift',
  'stabil',
  'jitcnt',
  'calcnt',
  'errcnt',
  'stbcnt',
  'tai',
] as const;
export type Timex = Record<(typeof FIELDS)[number], number>;

/** adjtimex's return value when the clock is not synchronised (<sys/timex.h>). */
const TIME_ERROR = 5;
/** status bit: offset and jitter are in nanoseconds, not microseconds. */
const STA_NANO = 0x2000;
/** freq, ppsfreq and stabil are ppm with a 16-bit binary fraction (adjtimex(2), NOTES). */
const PPM16 = 1e6 * 65536;
/** The helper's `name value` lines; every field must be there, as an integer. */
export function parseTimex(text: string): Timex {
  const seen = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+) (-?\d+)$/.exec(line.trim());
    if (m) seen.set(m[1]!, Number(m[2]));
  }
  const missing = FIELDS.filter((f) => !seen.has(f));
  if (missing.length > 0)
    throw new Error(`helper output lacks ${missing.join(', ')}: ${JSON.stringify(text)}`);
  return Object.fromEntries(FIELDS.map((f) => [f, seen.get(f)!])) as Timex;
}

/** node_exporter's scaling of each field, family by family, in its order. */
export function timexValues(t: Timex): [Family, number][] {
  const divisor = t.status & STA_NANO ? 1e9 : 1e6;
  return [
    [SYNC, t.state === TIME_ERROR ? 0 : 1],
    [OFFSET, t.offset / divisor],
    [FREQ, 1 + t.freq / PPM16],
    [MAXERROR, t.maxerror / 1e6],
    [ESTERROR, t.esterror / 1e6],
    [STATUS, t.status],
    [CONSTANT, t.constant],
    [TICK, t.tick / 1e6],
    [PPSFREQ, t.ppsfreq / PPM16],
    [JITTER, t.jitter / divisor],
    [SHIFT, t.shift],
    [STABIL, t.stabil / PPM16],
    [JITCNT, t.jitcnt],
    [CALCNT, t.calcnt],
    [ERRCNT, t.errcnt],
    [STBCNT, t.stbcnt],
    [TAI, t.tai],
  ];
}

/** One system call's worth of work; a helper slower than this is stuck. */
const HELPER_TIMEOUT_MS = 2000;
/** A missing or non-executable helper is looked for again after this long. */
const MISSING_RETRY_MS = 60_000;
/** A helper asked nothing for this long is let go (a restarted module makes a new one). */
const HELPER_IDLE_MS = 5 * 60_000;

interface Waiting {
  resolve(text: string): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The helper, kept running between scrapes: a newline in, one answer out, ended by `end`. Started
 * at the first query and again after it died; let go after HELPER_IDLE_MS without a query (its
 * stdin closed, it exits). Its pipes do not keep the agent alive.
 */
export class TimexHelper {
  private readonly path: string;
  private readonly timeoutMs: number;
  private child: ChildProcess | undefined;
  private out = '';
  private stderr = '';
  private waiting: Waiting | undefined;
  private idle: NodeJS.Timeout | undefined;
  private missing: { err: Error; until: number } | undefined;

  constructor(path: string, timeoutMs = HELPER_TIMEOUT_MS) {
    this.path = path;
    this.timeoutMs = timeoutMs;
  }

  /** The helper's answer (without `end`), or an error that says what to do. */
  query(): Promise<string> {
    if (this.waiting !== undefined)
      return Promise.reject(new Error('timex: the previous query has not ended'));
    // A helper that is not there (not installed, not executable) stays so for a while: a failed
    // spawn costs ≈ 15 ms of CPU (fork of a large process), not worth paying at every scrape.
    if (this.missing !== undefined && Date.now() < this.missing.until)
      return Promise.reject(this.missing.err);
    const child = this.child ?? this.start();
    clearTimeout(this.idle);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new Error(`adjtimex helper ${this.path} gave no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.waiting = { resolve, reject, timer };
      child.stdin?.write('\n');
    }).finally(() => {
      this.idle = setTimeout(() => this.stop(), HELPER_IDLE_MS);
      this.idle.unref();
    });
  }

  /** Lets the helper go: its stdin closes and it exits. */
  stop(): void {
    const child = this.child;
    this.child = undefined;
    child?.stdin?.end();
  }

  private start(): ChildProcess {
    const child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.out = '';
    this.stderr = '';
    child.stdout?.setEncoding('latin1');
    child.stdout?.on('data', (chunk: string) => {
      this.out += chunk;
      const end = this.out.indexOf('end\n');
      if (end === -1) return;
      const answer = this.out.slice(0, end);
      this.out = this.out.slice(end + 4);
      this.settle((w) => w.resolve(answer));
    });
    child.stderr?.setEncoding('latin1');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-1000);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      const e = spawnError(this.path, err);
      if (err.code === 'ENOENT' || err.code === 'EACCES')
        this.missing = { err: e, until: Date.now() + MISSING_RETRY_MS };
      this.fail(e);
    });
    // close, not exit: by then its stderr has been read, so the error can say why.
    child.on('close', (code, signal) => {
      if (this.child === child) this.child = undefined;
      this.fail(
        new Error(
          `adjtimex helper ${this.path} exited (${code ?? signal}) before answering: ${this.stderr.trim() || 'no message'}`,
        ),
      );
    });
    // A write to a helper that just died: its exit says why.
    child.stdin?.on('error', () => {});
    // Nothing it holds is a reason for the agent to keep running.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr])
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }

  private settle(how: (w: Waiting) => void): void {
    const w = this.waiting;
    if (w === undefined) return;
    this.waiting = undefined;
    clearTimeout(w.timer);
    how(w);
  }

  /** A failed query kills the helper: the next one starts afresh. */
  private fail(err: Error): void {
    if (this.waiting === undefined) return;
    this.child?.kill('SIGKILL');
    this.child = undefined;
    this.settle((w) => w.reject(err));
  }
}

function spawnError(path: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'ENOENT')
    return new Error(
      `adjtimex helper ${path} not found: it ships in the nodeward image; elsewhere build it with \`node agent/metrics/timex/build.ts ${path}\` (needs gcc and libc6-dev), or point metrics.timex.helper at it, or set metrics.collectors.timex: false`,
    );
  if (err.code === 'EACCES') return new Error(`adjtimex helper ${path} is not executable (chmod 755 it)`);
  return new Error(`adjtimex helper ${path} cannot be started: ${err.message}`);
}

const EPERM = 1;

/** The answer as fields; a refused call (a seccomp profile's EPERM) is no data, as node_exporter reports it. */
export function answerOf(text: string): Timex {
  const refused = /^error (\d+) (.*)$/m.exec(text);
  if (refused) {
    const message = `adjtimex: ${refused[2]}`;
    if (Number(refused[1]) === EPERM) throw new NoDataError(message);
    throw new Error(message);
  }
  return parseTimex(text);
}

export function createTimexCollector(settings: MetricsConfig): Collector {
  const helper = new TimexHelper(settings.timex.helper);
  return {
    families: FAMILIES,
    async collect(emit) {
      for (const [f, value] of timexValues(answerOf(await helper.query()))) emit(f, value);
    },
  };
}
