import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentProcess, startAgentProcess } from './cli.ts';
import { type KafkaMock, Lab, skipReason, startKafka, tempDir, waitFor } from './lab/index.ts';
import { fakeContainer } from './support/log-shipper/harness.ts';
import { KubeletLikeWriter } from './support/log-shipper/kubelet-writer.ts';

/**
 * The real `nodeward agent` process behind the kubelet's rotation, as an operator would try it:
 * containers writing steadily, rotated the kubelet's way (rename, gzip, at most 4 files), CRI
 * partial lines cut by rotations, Kafka hung long enough that the reader falls two rotations
 * behind, then back; a SIGKILL while the kubelet goes on rotating and deleting, and a restart.
 * Nothing still on disk is lost, what the kubelet deleted unread is counted, duplicates stay
 * within about a second of lines.
 *
 * Until the discovery fix of the dangling link (rotation-gap.test.ts) this failed 2 of 4 runs on
 * a loaded machine with 62–374 on-disk lines missing, a whole small rotation at a time; since, 3 of
 * 3 runs passed (1,557–2,127 on-disk lines, all there; 311–795 deleted unread, counted 569–1,222;
 * 0 duplicates). Under load (4–5 runs at once) it then failed about 1 run in 5, for causes each
 * now fixed and forced deterministically by a test of its own:
 * - a rotated file compressed between the restart recovery's listing (or stat) and its open
 *   (log-shipper/rotation-gz-race.test.ts);
 * - a checkpoint of a file taken while it was empty (fingerprint of length 0) resumed on a new
 *   0.log that reused its inode: whole rotations missing (rotation-inode-reuse.test.ts);
 * - a live file renamed before its chain listed the rotations, left without a stamp: recovered
 *   files read after it, a line cut by a rotation joined with the wrong file, 2–4 single lines
 *   missing (rotation-restart-order.test.ts).
 * Since, 60 of 60 runs passed, 5 at once.
 * The count is an estimate from checkpoints: lines delivered in the last checkpoint interval
 * before the SIGKILL (up to about a second of them, 600 here) count as lost too when their file
 * is deleted while the agent is down, hence the bounds of 0.5× to 2× plus that second below
 * (a CI run counted 648 for 92 unread).
 */

const skip = skipReason({ binaries: ['kcat'] });
if (skip) console.warn(`logs rotation crash tests skipped: ${skip}`);

const lab = new Lab();
afterEach(() => lab.cleanup());

const CONTAINERS = 6;
const NAMESPACE = 'rot';
const TOPIC = `logs.${NAMESPACE}`;
const MAX_LINES = 200;
/** Per container every 50 ms: 5 lines of ≈ 200 B, 100 lines/s, ≈ 20 kB/s; a rotation every ≈ 1.5 s. */
const LINES_PER_TICK = 5;
const TICK_MS = 50;
const MAX_BYTES = 30 * 1024;
const MAX_FILES = 4;

function startAgent(cwd: string, kafka: KafkaMock): Promise<AgentProcess> {
  // biome-ignore format: one flag and its value per line
  const args = [
    '--set', 'metrics.enabled=false',
    '--set', 'logs.sink=kafka',
    '--set', `logs.kafka.brokers=${kafka.bootstrap}`,
    '--set', `logs.batch.maxLines=${MAX_LINES}`,
    '--set', 'logs.batch.wait=20ms',
    '--set', 'logs.pollInterval=100ms',
    // Small: a hung broker stops the reader within a file, and the kubelet rotates on.
    '--set', 'logs.maxInflightBytes=128KiB',
    '--set', 'logs.batch.maxBytes=64KiB',
  ];
  return startAgentProcess(args, { cwd }).then((agent) => {
    lab.defer('kill the agent', () => agent.kill());
    return agent;
  });
}

function startWriters(writers: KubeletLikeWriter[]) {
  let n = 0;
  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    writers.forEach((w, i) => {
      // Now and then a line the runtime cut into P/F parts, straddling a rotation.
      if (tick % 37 === i) w.straddling(`c${i}-straddle-${tick} ${'s'.repeat(400)}`, 200);
      const pad = 'x'.repeat(150);
      w.lines(Array.from({ length: LINES_PER_TICK }, (_, k) => `c${i}-${n + k} ${pad}`));
    });
    n += LINES_PER_TICK;
  }, TICK_MS);
  let stopped = false;
  const stop = () => {
    if (!stopped) clearInterval(timer);
    stopped = true;
  };
  lab.defer('stop the writers', stop);
  return { stop };
}

async function messages(kafka: KafkaMock): Promise<{ message: string; partial?: boolean }[]> {
  try {
    return (await kafka.readTopic(TOPIC, { timeoutMs: 15_000 })).map(
      (r) => JSON.parse(r.value ?? 'null') as { message: string; partial?: boolean },
    );
  } catch {
    return [];
  }
}

async function lostLines(agent: AgentProcess): Promise<number> {
  const text = await (await fetch(`${agent.url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^nodeward_logs_lost_lines_total\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}

describe.skipIf(skip)(
  'nodeward agent → kafka behind the kubelet rotation (real process, mock broker)',
  () => {
    it('loses no line still on disk through a broker hang and a SIGKILL, counts what retention deleted unread, few duplicates', async () => {
      const kafka = await startKafka({ lab });
      const cwd = await tempDir('logs-rotation-crash', lab);
      const root = join(cwd, '.nodeward', 'containers');
      mkdirSync(root, { recursive: true });
      const writers = Array.from({ length: CONTAINERS }, (_, i) => {
        const c = fakeContainer(root, join(cwd, 'pods'), NAMESPACE, `web-${i}`, 'app');
        return new KubeletLikeWriter(c.file, { maxBytes: MAX_BYTES, maxFiles: MAX_FILES });
      });
      const agent1 = await startAgent(cwd, kafka);
      const writing = startWriters(writers);
      await waitFor(async () => (await messages(kafka)).length >= 1000, {
        what: '1000 lines shipped',
        timeoutMs: 30_000,
        intervalMs: 250,
        services: [kafka.service],
      });

      // The broker hangs for 4 s: ≈ 80 kB per container, more than two rotations.
      const rotationsBefore = writers.map((w) => w.rotations.length);
      kafka.service.signal('SIGSTOP');
      let hung = true;
      lab.defer('resume the mock broker', () => {
        if (hung) kafka.service.signal('SIGCONT');
      });
      await new Promise((r) => setTimeout(r, 4000));
      kafka.service.signal('SIGCONT');
      hung = false;
      expect(
        Math.min(...writers.map((w, i) => w.rotations.length - rotationsBefore[i]!)),
      ).toBeGreaterThanOrEqual(2);
      await new Promise((r) => setTimeout(r, 3000));

      // SIGKILL; the kubelet rotates on (and deletes beyond its file count) while the agent is down.
      const killed = await agent1.signal('SIGKILL');
      expect(killed.code).toBeNull();
      const atKill = writers.reduce((a, w) => a + w.written.length, 0);
      await new Promise((r) => setTimeout(r, 3000));
      const agent2 = await startAgent(cwd, kafka);
      await new Promise((r) => setTimeout(r, 1000));
      writing.stop();

      const deleted = new Set(writers.flatMap((w) => [...w.deletedMessages()]));
      const all = writers.flatMap((w) => w.written);
      const onDisk = all.filter((m) => !deleted.has(m));
      const got = await waitFor(
        async () => {
          const ms = await messages(kafka);
          const seen = new Set(ms.map((r) => r.message));
          return onDisk.every((m) => seen.has(m)) ? ms : undefined;
        },
        { what: 'every line still on disk', timeoutMs: 90_000, intervalMs: 1000, services: [kafka.service] },
      ).catch(async (err: unknown) => {
        const seen = new Set((await messages(kafka)).map((r) => r.message));
        const lost = onDisk.filter((m) => !seen.has(m));
        throw new Error(
          `${lost.length} of ${onDisk.length} lines still on disk lost, e.g. ${lost.slice(0, 3)}`,
          {
            cause: err,
          },
        );
      });
      const written = new Set(all);
      // The second part of a line cut by a rotation, alone: its first part was in a file the
      // kubelet deleted while the agent was down (counted lost), its checkpoint not yet past it.
      const straddles = all.filter((m) => m.includes('-straddle-'));
      const tails = got.filter(
        (r) => !written.has(r.message) && straddles.some((m) => m.endsWith(r.message)),
      );
      const unknown = got.filter((r) => !written.has(r.message) && !tails.includes(r));
      expect(unknown.map((r) => r.message.slice(0, 30))).toEqual([]);
      expect(got.filter((r) => r.partial)).toEqual([]);
      const seen = new Map<string, number>();
      for (const r of got) if (written.has(r.message)) seen.set(r.message, (seen.get(r.message) ?? 0) + 1);
      const duplicates = got.length - tails.length - seen.size;
      const unread = [...deleted].filter((m) => !seen.has(m)).length;
      const counted = await lostLines(agent2);
      // About a second of lines (checkpoints every second) plus the batch in flight.
      const perSecond = CONTAINERS * LINES_PER_TICK * (1000 / TICK_MS);
      const bound = Math.round(perSecond * 1.5) + MAX_LINES;
      console.info(
        `logs rotation crash: ${all.length} lines written (${atKill} at the SIGKILL), ${got.length} records, ${onDisk.length} still on disk, all there; ${deleted.size} in files retention deleted, ${unread} of them never read, lost counted ${counted}, ${tails.length} second parts alone; duplicates ${duplicates} (bound ${bound})`,
      );
      if (unread > 0) {
        expect(counted).toBeGreaterThanOrEqual(unread * 0.5);
        expect(counted).toBeLessThanOrEqual(unread * 2 + bound);
      }
      expect(duplicates).toBeLessThanOrEqual(bound);
    }, 240_000);
  },
);
