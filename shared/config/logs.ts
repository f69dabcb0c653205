import { z } from 'zod';
import { hostPort } from './units.ts';

/** The `logs` section: the log shipper (log-shipper/). */
export const logsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Ship container log lines.'),
  root: z
    .string()
    .min(1)
    .default('.nodeward/containers')
    .describe('Directory of container log files (/var/log/containers on a node).'),
  kafka: z
    .strictObject({
      brokers: z.array(hostPort()).default([]).describe('Bootstrap brokers, host:port.'),
    })
    .prefault({})
    .describe('Kafka sink.'),
});
