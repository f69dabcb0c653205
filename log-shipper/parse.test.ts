import { describe, expect, it } from 'vitest';
import { FLAG_PARSE_ERROR, FLAG_PARTIAL, FLAG_TRUNCATED, LineParser, type Stream } from './parse.ts';

interface Out {
  time: string;
  stream: Stream;
  message: string;
  flags: number;
  start: number;
  end: number;
}

/** Feeds whole physical lines (newline-terminated) as the tailer would, tracking file offsets. */
function parse(text: string | Buffer, maxLineBytes = 1024) {
  const lines: Out[] = [];
  const skips: number[] = [];
  const parser = new LineParser(maxLineBytes, {
    line: (time, stream, message, flags, start, end) =>
      lines.push({ time, stream, message, flags, start, end }),
    skip: (end) => skips.push(end),
  });
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  let s = 0;
  for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, s)) {
    parser.push(buf, s, nl, s, nl + 1, false, false);
    s = nl + 1;
  }
  return { lines, skips, parser, end: buf.length };
}

const T = '2024-05-01T10:00:00.123456789Z';

describe('CRI', () => {
  it('parses full lines of both streams with their times', () => {
    const first = `${T} stdout F hello world\n`;
    const text = `${first}2024-05-01T10:00:01Z stderr F oops: {"json": true}\n`;
    const { lines, parser } = parse(text);
    expect(parser.format).toBe('cri');
    expect(lines).toEqual([
      { time: T, stream: 'stdout', message: 'hello world', flags: 0, start: 0, end: first.length },
      {
        time: '2024-05-01T10:00:01Z',
        stream: 'stderr',
        message: 'oops: {"json": true}',
        flags: 0,
        start: first.length,
        end: text.length,
      },
    ]);
  });

  it('keeps an empty message and spaces inside the message', () => {
    const { lines } = parse(`${T} stdout F \n${T} stdout F\n${T} stdout F   indented  \n`);
    expect(lines.map((l) => l.message)).toEqual(['', '', '  indented  ']);
    expect(lines.every((l) => l.flags === 0)).toBe(true);
  });

  it('decodes UTF-8 messages', () => {
    const { lines } = parse(`${T} stdout F grüße 日本 🚀\n`);
    expect(lines[0]?.message).toBe('grüße 日本 🚀');
  });

  it('accepts time zone offsets and extra tags after the P/F tag', () => {
    const { lines } = parse('2024-05-01T10:00:00.5+02:00 stdout F:x1 tagged\n');
    expect(lines[0]).toMatchObject({ time: '2024-05-01T10:00:00.5+02:00', message: 'tagged', flags: 0 });
  });

  it('merges P partials into one line that ends with F', () => {
    const text = `${T} stdout P part one, \n${T} stdout P part two, \n${T} stdout F end\n`;
    const { lines } = parse(text);
    expect(lines).toEqual([
      { time: T, stream: 'stdout', message: 'part one, part two, end', flags: 0, start: 0, end: text.length },
    ]);
  });

  it('merges partials per stream, and never lets a checkpoint pass an open partial', () => {
    const p1 = `${T} stdout P first half `;
    const e1 = `${T} stderr F an error in between`;
    const f1 = `${T} stdout F second half`;
    const text = `${p1}\n${e1}\n${f1}\n`;
    const { lines } = parse(text);
    expect(lines).toEqual([
      // The stderr line ends after the open stdout partial began: its checkpoint stays before it.
      { time: T, stream: 'stderr', message: 'an error in between', flags: 0, start: p1.length + 1, end: 0 },
      { time: T, stream: 'stdout', message: 'first half second half', flags: 0, start: 0, end: text.length },
    ]);
  });

  it('reassembles a UTF-8 character split across partials', () => {
    const euro = Buffer.from('€'); // 3 bytes, split after the first
    const text = Buffer.concat([
      Buffer.from(`${T} stdout P price: `),
      euro.subarray(0, 1),
      Buffer.from(`\n${T} stdout F `),
      euro.subarray(1),
      Buffer.from('42\n'),
    ]);
    expect(parse(text).lines[0]?.message).toBe('price: €42');
  });

  it('splits merged partials longer than maxLineBytes into truncated records, losing nothing', () => {
    const chunk = 'x'.repeat(600);
    const text = `${T} stdout P ${chunk}\n${T} stdout P ${chunk}\n${T} stdout F ${chunk}\n`;
    const { lines } = parse(text, 1024);
    expect(lines.map((l) => [l.message.length, l.flags])).toEqual([
      [1024, FLAG_TRUNCATED],
      [776, 0],
    ]);
    expect(lines.map((l) => l.message).join('')).toBe(chunk.repeat(3));
    // After the first record the second physical line (holding byte 1024) must be re-read.
    const secondLine = text.indexOf('\n') + 1;
    expect(lines[0]?.end).toBe(secondLine);
    expect(lines[1]?.end).toBe(text.length);
  });

  it('ships partials left open when the file ends, flagged partial', () => {
    const text = `${T} stdout P never finished\n`;
    const { lines, parser, end } = parse(text);
    expect(lines).toEqual([]);
    parser.flush(end);
    expect(lines).toEqual([
      {
        time: T,
        stream: 'stdout',
        message: 'never finished',
        flags: FLAG_PARTIAL,
        start: 0,
        end: text.length,
      },
    ]);
  });

  it('joins pieces of a physical line the tailer cut at maxLineBytes', () => {
    const lines: Out[] = [];
    const parser = new LineParser(2048, {
      line: (time, stream, message, flags, start, end) =>
        lines.push({ time, stream, message, flags, start, end }),
      skip: () => {},
    });
    const line = Buffer.from(`${T} stdout F ${'a'.repeat(1500)}`);
    parser.push(line, 0, 1024, 0, 1024, false, true);
    parser.push(line, 1024, line.length, 1024, line.length + 1, true, false);
    expect(lines).toEqual([
      { time: T, stream: 'stdout', message: 'a'.repeat(1500), flags: 0, start: 0, end: line.length + 1 },
    ]);
  });
});

describe('docker json-file', () => {
  it('parses lines and strips the trailing newline of log', () => {
    const text =
      '{"log":"hello \\"quoted\\"\\n","stream":"stdout","time":"2024-05-01T10:00:00.1Z"}\n' +
      '{"log":"bad\\n","stream":"stderr","time":"2024-05-01T10:00:00.2Z"}\n';
    const { lines, parser } = parse(text);
    expect(parser.format).toBe('docker');
    expect(lines.map((l) => [l.time, l.stream, l.message, l.flags])).toEqual([
      ['2024-05-01T10:00:00.1Z', 'stdout', 'hello "quoted"', 0],
      ['2024-05-01T10:00:00.2Z', 'stderr', 'bad', 0],
    ]);
  });

  it('merges partial logs (no trailing newline) per stream', () => {
    const text =
      '{"log":"a long ","stream":"stdout","time":"2024-05-01T10:00:00.1Z"}\n' +
      '{"log":"line\\n","stream":"stdout","time":"2024-05-01T10:00:00.2Z"}\n';
    const { lines } = parse(text);
    expect(lines).toEqual([
      {
        time: '2024-05-01T10:00:00.1Z',
        stream: 'stdout',
        message: 'a long line',
        flags: 0,
        start: 0,
        end: text.length,
      },
    ]);
  });

  it('forwards a line that is not docker json raw once the file is docker', () => {
    const { lines } = parse(
      '{"log":"ok\\n","stream":"stdout","time":"2024-05-01T10:00:00.1Z"}\n{"log": broken\n',
    );
    expect(lines[1]).toMatchObject({ stream: 'unknown', message: '{"log": broken', flags: FLAG_PARSE_ERROR });
  });
});

describe('garbage', () => {
  it('forwards lines that are neither format raw, flagged, with the read time', () => {
    const text = 'plain text line\n2024-05-01 stdout F not rfc3339\n{"not":"docker"}\n';
    const { lines, parser } = parse(text);
    expect(parser.format).toBeUndefined();
    expect(lines.map((l) => [l.stream, l.message, l.flags])).toEqual([
      ['unknown', 'plain text line', FLAG_PARSE_ERROR],
      ['unknown', '2024-05-01 stdout F not rfc3339', FLAG_PARSE_ERROR],
      ['unknown', '{"not":"docker"}', FLAG_PARSE_ERROR],
    ]);
    expect(Number.isNaN(Date.parse(lines[0]!.time))).toBe(false);
  });

  it('detects CRI after leading garbage and flags garbage in a CRI file', () => {
    const { lines, parser } = parse(`junk\n${T} stdout F ok\n${T} stdsomething F nope\n`);
    expect(parser.format).toBe('cri');
    expect(lines.map((l) => l.flags)).toEqual([FLAG_PARSE_ERROR, 0, FLAG_PARSE_ERROR]);
  });

  it('rejects lines that only look like CRI', () => {
    for (const bad of [
      `${T} stdout X msg`,
      `${T} stdout Fmsg`,
      `${T}  stdout F msg`,
      `${T.replace('T', ' ')} stdout F msg`,
      `${T} stdin  F msg`,
    ]) {
      expect(parse(`${bad}\n`).lines[0]?.flags, bad).toBe(FLAG_PARSE_ERROR);
    }
  });

  it('skips empty lines without a record, moving the checkpoint', () => {
    const { lines, skips } = parse(`\n${T} stdout F x\n\n`);
    expect(lines.length).toBe(1);
    expect(skips).toEqual([1, lines[0]!.end + 1]);
  });
});
