import { promisify } from 'node:util';
import zlib from 'node:zlib';
import kafkajs, { CompressionTypes } from 'kafkajs';
import type { KafkaCompression } from '../../shared/config/index.ts';

/**
 * Batch compression for the kafkajs sink. kafkajs itself only knows gzip and takes other codecs
 * by registration. zstd comes from node:zlib (asynchronous: the libuv thread pool, like gzip);
 * snappy (raw block, which every Kafka client and broker reads) and lz4 (the frame format Kafka's
 * v2 record batches use) from @platformatic/wasm-utils, the maintained WebAssembly codecs that
 * @platformatic/kafka ships with — loaded only when one of them is chosen.
 */

type Codec = {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(b: Buffer): Promise<Buffer>;
};

const TYPES: Record<KafkaCompression, CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

async function codecFor(name: 'snappy' | 'lz4' | 'zstd'): Promise<Codec> {
  if (name === 'zstd') {
    const compress = promisify(zlib.zstdCompress);
    const decompress = promisify(zlib.zstdDecompress);
    return {
      compress: (encoder) => compress(encoder.buffer),
      decompress: (buffer) => decompress(buffer),
    };
  }
  const wasm = await import('@platformatic/wasm-utils');
  const [compress, decompress] =
    name === 'snappy' ? [wasm.snappyCompress, wasm.snappyDecompress] : [wasm.lz4Compress, wasm.lz4Decompress];
  return {
    compress: async (encoder) => compress(encoder.buffer),
    decompress: async (buffer) => decompress(buffer),
  };
}

/** The kafkajs compression type for `name`, with its codec registered (once per process). */
export async function kafkajsCompression(name: KafkaCompression): Promise<CompressionTypes> {
  if (name !== 'none' && name !== 'gzip') {
    const codec = await codecFor(name);
    // Through the default export: Node's CommonJS interop does not see this one as a named export.
    (kafkajs.CompressionCodecs as Record<number, () => Codec>)[TYPES[name]] = () => codec;
  }
  return TYPES[name];
}
