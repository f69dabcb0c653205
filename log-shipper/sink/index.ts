import type { Logger } from '../../shared/logger.ts';
import { createFileSink } from './file.ts';
import { createKafkaSink, type KafkaSinkOptions } from './kafka.ts';
import { createPlatformaticKafkaSink } from './kafka-platformatic.ts';
import type { Sink, SinkName } from './sink.ts';
import { createStdoutSink } from './stdout.ts';

export {
  type Refusal,
  reasonOf,
  refusalOf,
  SINK_NAMES,
  type Sink,
  type SinkName,
  type SinkRecord,
} from './sink.ts';

export interface SinkOptions {
  sink: SinkName;
  file: { path: string };
  kafka: KafkaSinkOptions;
}

const FACTORIES: Record<SinkName, (options: SinkOptions, log: Logger) => Sink> = {
  file: (o) => createFileSink(o.file.path),
  stdout: () => createStdoutSink(),
  kafka: (o, log) =>
    o.kafka.client === 'platformatic'
      ? createPlatformaticKafkaSink(o.kafka, log)
      : createKafkaSink(o.kafka, log),
};

export function createSink(options: SinkOptions, log: Logger): Sink {
  return FACTORIES[options.sink](options, log);
}
