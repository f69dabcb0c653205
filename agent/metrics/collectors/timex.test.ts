import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST_COLLECTORS } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import {
  collectSamples,
  compileTimexHelper,
  fixture,
  parseExposition,
  sampleValue,
  settingsFor,
  type TestSample,
} from '../../../test/support/metrics/testing.ts';
import { NoDataError } from '../collector.ts';
import { createHostRegistry } from '../index.ts';
import { createTimexCollector, parseTimex, TimexHelper, timexValues } from './timex.ts';

const FAMILIES = [
  'node_timex_sync_status',
  'node_timex_offset_seconds',
  'node_timex_frequency_adjustment_ratio',
  'node_timex_maxerror_seconds',
  'node_timex_estimated_error_seconds',
  'node_timex_status',
  'node_timex_loop_time_constant',
  'node_timex_tick_seconds',
  'node_timex_pps_frequency_hertz',
  'node_timex_pps_jitter_seconds',
  'node_timex_pps_shift_seconds',
  'node_timex_pps_stability_hertz',
  'node_timex_pps_jitter_total',
  'node_timex_pps_calibration_total',
  'node_timex_pps_error_total',
  'node_timex_pps_stability_exceeded_total',
  'node_timex_tai_offset_seconds',
];

/** What nodeward-timex prints, with these fields changed. */
const output = (fields: Record<string, number>) =>
  Object.entries({
    state: 0,
    offset: 0,
    freq: 0,
    maxerror: 0,
    esterror: 0,
    status: 0,
    constant: 0,
    tick: 10000,
    ppsfreq: 0,
    jitter: 0,
    shift: 0,
    stabil: 0,
    jitcnt: 0,
    calcnt: 0,
    errcnt: 0,
    stbcnt: 0,
    tai: 0,
    ...fields,
  })
    .map(([k, v]) => `${k} ${v}\n`)
    .join('');

const values = (text: string) =>
  Object.fromEntries(timexValues(parseTimex(text)).map(([f, v]) => [f.name, v]));

describe('timex: parsing and scaling the helper output as node_exporter does', () => {
  it('reads offset and jitter as microseconds without STA_NANO', () => {
    const v = values(
      output({
        state: 1, // TIME_INS: a leap second pending, still synchronised
        offset: -2500,
        freq: 1310720, // 20 ppm with a 16-bit fraction
        maxerror: 48000,
        esterror: 1200,
        status: 0x0011, // STA_PLL | STA_INS
        constant: 6,
        tick: 10000,
        ppsfreq: -655360,
        jitter: 120,
        shift: 4,
        stabil: 65536,
        jitcnt: 3,
        calcnt: 40,
        errcnt: 1,
        stbcnt: 2,
        tai: 37,
      }),
    );
    expect(v).toEqual({
      node_timex_sync_status: 1,
      node_timex_offset_seconds: -0.0025,
      node_timex_frequency_adjustment_ratio: expect.closeTo(1.00002, 15),
      node_timex_maxerror_seconds: 0.048,
      node_timex_estimated_error_seconds: 0.0012,
      node_timex_status: 17,
      node_timex_loop_time_constant: 6,
      node_timex_tick_seconds: 0.01,
      node_timex_pps_frequency_hertz: expect.closeTo(-0.00001, 18),
      node_timex_pps_jitter_seconds: 0.00012,
      node_timex_pps_shift_seconds: 4,
      node_timex_pps_stability_hertz: expect.closeTo(0.000001, 18),
      node_timex_pps_jitter_total: 3,
      node_timex_pps_calibration_total: 40,
      node_timex_pps_error_total: 1,
      node_timex_pps_stability_exceeded_total: 2,
      node_timex_tai_offset_seconds: 37,
    });
  });

  it('reads offset and jitter as nanoseconds with STA_NANO; the error bounds stay microseconds', () => {
    const v = values(
      output({ state: 0, offset: -123456, jitter: 5000, maxerror: 3500, esterror: 120, status: 0x2001 }),
    );
    expect(v.node_timex_offset_seconds).toBe(-0.000123456);
    expect(v.node_timex_pps_jitter_seconds).toBe(0.000005);
    expect(v.node_timex_maxerror_seconds).toBe(0.0035);
    expect(v.node_timex_estimated_error_seconds).toBe(0.00012);
    expect(v.node_timex_status).toBe(8193);
    expect(v.node_timex_sync_status).toBe(1);
  });

  it('says unsynchronised only when adjtimex returned TIME_ERROR (5)', () => {
    for (const [state, sync] of [
      [0, 1], // TIME_OK
      [1, 1], // TIME_INS
      [2, 1], // TIME_DEL
      [3, 1], // TIME_OOP
      [4, 1], // TIME_WAIT
      [5, 0], // TIME_ERROR
    ])
      expect(values(output({ state: state! })).node_timex_sync_status, `state ${state}`).toBe(sync);
    // The status bits do not decide it (node_exporter reads only the return value).
    expect(values(output({ state: 0, status: 0x40 })).node_timex_sync_status).toBe(1);
  });

  it('rejects output that lacks a field, naming it', () => {
    const text = output({})
      .replace(/^tai .*\n/m, '')
      .replace(/^state .*\n/m, '');
    expect(() => parseTimex(text)).toThrow(/lacks state, tai/);
    expect(() => parseTimex('')).toThrow(/lacks state, offset/);
  });

  it('runs the helper it is configured with (the fixture host: chrony in sync)', async () => {
    const samples = await collectSamples(createTimexCollector(settingsFor(fixture('host/proc'))));
    expect(samples.map((s) => s.name)).toEqual(FAMILIES);
    expect(samples.every((s) => Object.keys(s.labels).length === 0)).toBe(true);
    expect(sampleValue(samples, 'node_timex_offset_seconds')).toBe(-0.000123456);
    expect(sampleValue(samples, 'node_timex_tai_offset_seconds')).toBe(37);
  });
});

describe('timex on this machine (the real helper)', () => {
  let build: ReturnType<typeof compileTimexHelper>;
  let samples: TestSample[];
  beforeAll(async () => {
    build = compileTimexHelper();
    samples = await collectSamples(
      createTimexCollector(settingsFor('/proc', { timex: { helper: build.helper } })),
    );
  });
  afterAll(() => build?.remove());

  it('reports every family once, with the kernel limits holding', () => {
    expect(samples.map((s) => s.name)).toEqual(FAMILIES);
    const v = (name: string) => sampleValue(samples, name);
    // tick: 1e6 / USER_HZ µs (100 on x86 and arm64), which adjtimex may set within ±10 %.
    expect(v('node_timex_tick_seconds')).toBeGreaterThanOrEqual(0.009);
    expect(v('node_timex_tick_seconds')).toBeLessThanOrEqual(0.011);
    // maxerror grows to NTP_PHASE_LIMIT (16 s), where the kernel marks the clock unsynchronised.
    expect(v('node_timex_maxerror_seconds')).toBeGreaterThanOrEqual(0);
    expect(v('node_timex_maxerror_seconds')).toBeLessThanOrEqual(16);
    expect(v('node_timex_estimated_error_seconds')).toBeGreaterThanOrEqual(0);
    // The kernel holds the PLL offset within MAXPHASE (0.5 s) and the frequency within MAXFREQ (500 ppm).
    expect(Math.abs(v('node_timex_offset_seconds'))).toBeLessThanOrEqual(0.5);
    expect(Math.abs(v('node_timex_frequency_adjustment_ratio') - 1)).toBeLessThanOrEqual(500e-6);
    const status = v('node_timex_status');
    expect(Number.isInteger(status) && status >= 0).toBe(true);
    const sync = v('node_timex_sync_status');
    expect([0, 1]).toContain(sync);
    // STA_UNSYNC (0x40) makes the kernel answer TIME_ERROR.
    if (status & 0x40) expect(sync).toBe(0);
    for (const name of [
      'node_timex_loop_time_constant',
      'node_timex_tai_offset_seconds',
      'node_timex_pps_jitter_total',
      'node_timex_pps_calibration_total',
      'node_timex_pps_error_total',
      'node_timex_pps_stability_exceeded_total',
    ])
      expect(Number.isInteger(v(name)) && v(name) >= 0, name).toBe(true);
  });
});

describe('timex when the helper is missing or fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodeward-timex-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string, mode = 0o755) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, mode);
    return path;
  };
  const collect = (helper: string) =>
    collectSamples(createTimexCollector(settingsFor(fixture('host/proc'), { timex: { helper } })));

  it('fails this collector alone, with success 0 and an error naming the path and what to install', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const helper = join(dir, 'absent', 'nodeward-timex');
    const registry = createHostRegistry(
      settingsFor(fixture('host/proc'), { timex: { helper } }),
      createLogger('info', sink),
    );
    const families = parseExposition(await registry.metrics());
    const success = new Map(
      families.get('node_scrape_collector_success')!.samples.map((s) => [s.labels.collector, s.value]),
    );
    expect(success.get('timex')).toBe(0);
    expect(success.size).toBe(Object.keys(HOST_COLLECTORS).length);
    expect([...success].filter(([, ok]) => ok === 0).map(([name]) => name)).toEqual(['timex']);
    for (const name of FAMILIES) expect(families.get(name)?.samples ?? [], name).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', code: 'METRICS_COLLECTOR_FAILED', collector: 'timex' });
    const message = String((lines[0]!.err as { message: string }).message);
    expect(message).toContain(`collector timex: adjtimex helper ${helper} not found`);
    expect(message).toContain(`node agent/metrics/timex/build.ts ${helper}`);
    expect(message).toContain('gcc and libc6-dev');
  });

  it('says so when the helper is not executable, hangs, dies or prints garbage', async () => {
    const plain = script('plain', 'echo state 0', 0o644);
    await expect(collect(plain)).rejects.toThrow(`adjtimex helper ${plain} is not executable`);
    const dying = script('dying', 'read -r _; echo "cannot go on" >&2; exit 3');
    await expect(collect(dying)).rejects.toThrow(
      `adjtimex helper ${dying} exited (3) before answering: cannot go on`,
    );
    await expect(
      collect(script('garbage', 'while read -r _; do echo hello; echo end; done')),
    ).rejects.toThrow(/helper output lacks state, offset/);
    const stuck = script('stuck', 'exec sleep 5');
    await expect(new TimexHelper(stuck, 100).query()).rejects.toThrow(
      `adjtimex helper ${stuck} gave no answer within 100 ms`,
    );
    const refusing = script(
      'refusing',
      'while read -r _; do echo "error 22 Invalid argument"; echo end; done',
    );
    await expect(collect(refusing)).rejects.toThrow('adjtimex: Invalid argument');
  });

  it('reports a refused call (EPERM, a seccomp profile) as no data, as node_exporter does', async () => {
    const refused = script(
      'refused',
      'while read -r _; do echo "error 1 Operation not permitted"; echo end; done',
    );
    const err = await collect(refused).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoDataError);
    expect(String((err as Error).message)).toContain('Operation not permitted');
  });

  it('does not try a missing helper again at every scrape (a failed spawn costs ≈ 15 ms of CPU)', async () => {
    const path = join(dir, 'later', 'nodeward-timex');
    const helper = new TimexHelper(path);
    await expect(helper.query()).rejects.toThrow(`adjtimex helper ${path} not found`);
    // Installed meanwhile: still the remembered answer until the retry interval has passed.
    mkdirSync(join(dir, 'later'));
    copyFileSync(fixture('host/bin/nodeward-timex'), path);
    chmodSync(path, 0o755);
    await expect(helper.query()).rejects.toThrow(`adjtimex helper ${path} not found`);
  });

  it('keeps one helper running across scrapes, and starts a new one after it died', async () => {
    const counter = join(dir, 'starts');
    const counting = script(
      'counting',
      `echo start >> ${counter}; n=0; while read -r _; do n=$((n+1)); printf 'state 0\\noffset 0\\nfreq 0\\nmaxerror 0\\nesterror 0\\nstatus 0\\nconstant 0\\ntick 10000\\nppsfreq 0\\njitter 0\\nshift 0\\nstabil 0\\njitcnt 0\\ncalcnt 0\\nerrcnt 0\\nstbcnt 0\\ntai %d\\nend\\n' $n; [ $n -eq 3 ] && exit 0; done`,
    );
    const collector = createTimexCollector(
      settingsFor(fixture('host/proc'), { timex: { helper: counting } }),
    );
    const tai = async () => sampleValue(await collectSamples(collector), 'node_timex_tai_offset_seconds');
    // One process answers the first three scrapes (tai counts its answers), then exits.
    expect([await tai(), await tai(), await tai()]).toEqual([1, 2, 3]);
    await new Promise((r) => setTimeout(r, 100));
    expect(await tai()).toBe(1);
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});
