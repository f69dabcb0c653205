/**
 * The remote_write 1.0 WriteRequest (prometheus/prompb types.proto + remote.proto), encoded by hand:
 * four small messages, and a library would cost more start-up than the encoder is long.
 *
 *   WriteRequest { repeated TimeSeries timeseries = 1; }
 *   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
 *   Label        { string name = 1; string value = 2; }
 *   Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in ms
 */

export interface Series {
  /** Sorted by name, __name__ included, no empty values (the spec's rules; see toSeries). */
  readonly labels: readonly (readonly [string, string])[];
  readonly value: number;
  readonly timestampMs: number;
}

const varintSize = (value: number): number => {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) n++;
  return n;
};

/** Sizes computed first, then one exact buffer: no concatenation of per-message pieces. */
export function encodeWriteRequest(series: readonly Series[]): Buffer {
  const labelSizes: number[] = [];
  const seriesSizes: number[] = [];
  let total = 0;
  for (const s of series) {
    let size = 0;
    for (const [name, value] of s.labels) {
      const n = Buffer.byteLength(name);
      const v = Buffer.byteLength(value);
      const label = 1 + varintSize(n) + n + 1 + varintSize(v) + v;
      labelSizes.push(label);
      size += 1 + varintSize(label) + label;
    }
    const sample = 9 + 1 + varintSize(s.timestampMs);
    size += 1 + varintSize(sample) + sample;
    seriesSizes.push(size);
    total += 1 + varintSize(size) + size;
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  const varint = (value: number) => {
    let v = value;
    while (v >= 0x80) {
      out[pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    out[pos++] = v;
  };
  const string = (tag: number, text: string) => {
    out[pos++] = tag;
    varint(Buffer.byteLength(text));
    pos += out.write(text, pos, 'utf8');
  };
  let label = 0;
  series.forEach((s, i) => {
    out[pos++] = 0x0a; // WriteRequest.timeseries
    varint(seriesSizes[i]!);
    for (const [name, value] of s.labels) {
      out[pos++] = 0x0a; // TimeSeries.labels
      varint(labelSizes[label++]!);
      string(0x0a, name);
      string(0x12, value);
    }
    out[pos++] = 0x12; // TimeSeries.samples
    varint(9 + 1 + varintSize(s.timestampMs));
    out[pos++] = 0x09; // Sample.value, fixed64
    pos = out.writeDoubleLE(s.value, pos);
    out[pos++] = 0x10; // Sample.timestamp, varint
    varint(s.timestampMs);
  });
  return out;
}
