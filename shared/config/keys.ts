import type { z } from 'zod';

/**
 * Walking the schema itself (not a hand-kept list) is what lets env overrides, the example-config
 * coverage test and the docs stay in step with it.
 */

type AnySchema = z.ZodType;

interface Def {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  element?: AnySchema;
  shape?: Record<string, AnySchema>;
}

const defOf = (schema: AnySchema): Def => (schema as unknown as { def: Def }).def;

/** The schema under defaults, optionals and pipes (zod wrappers that do not change the key tree). */
export function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (
      def.innerType &&
      ['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch'].includes(def.type)
    ) {
      s = def.innerType;
    } else if (def.type === 'pipe' && def.in && defOf(def.in).type !== 'unknown') {
      s = def.in;
    } else {
      return s;
    }
  }
}

export function kindOf(schema: AnySchema): string {
  return defOf(unwrap(schema)).type;
}

export function shapeOf(schema: AnySchema): Record<string, AnySchema> | undefined {
  const def = defOf(unwrap(schema));
  return def.type === 'object' ? def.shape : undefined;
}

export function descriptionOf(schema: AnySchema): string | undefined {
  return (schema as unknown as { description?: string }).description;
}

export interface Leaf {
  path: string[];
  schema: AnySchema;
}

/** Every leaf key (a value that is not an object) with its path. */
export function leaves(schema: AnySchema, path: string[] = []): Leaf[] {
  const shape = shapeOf(schema);
  if (!shape) return [{ path, schema }];
  return Object.entries(shape).flatMap(([key, child]) => leaves(child, [...path, key]));
}

/** `logs.kafka.brokers[1]` from ['logs', 'kafka', 'brokers', 1]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}
