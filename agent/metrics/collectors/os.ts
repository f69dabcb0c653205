import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family, type Labels, NoDataError } from '../collector.ts';
import { isAbsent, readKernelFileSync } from '../procfs.ts';

const INFO = family(
  'node_os_info',
  'gauge',
  "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
);
const VERSION = family(
  'node_os_version',
  'gauge',
  'Metric containing the major.minor part of the OS version.',
);

/** os-release(5): KEY=value lines, values optionally quoted ('' literal, "" with \ escapes). */
export function parseOsRelease(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (line === '' || line.startsWith('#') || eq < 1) continue;
    let value = line.slice(eq + 1).trim();
    if (value.startsWith('"')) value = value.slice(1, value.lastIndexOf('"')).replace(/\\(["\\$`])/g, '$1');
    else if (value.startsWith("'")) value = value.slice(1, value.lastIndexOf("'"));
    env.set(line.slice(0, eq).trim(), value);
  }
  return env;
}

const KEYS: [label: string, key: string][] = [
  ['build_id', 'BUILD_ID'],
  ['id', 'ID'],
  ['id_like', 'ID_LIKE'],
  ['image_id', 'IMAGE_ID'],
  ['image_version', 'IMAGE_VERSION'],
  ['name', 'NAME'],
  ['pretty_name', 'PRETTY_NAME'],
  ['variant', 'VARIANT'],
  ['variant_id', 'VARIANT_ID'],
  ['version', 'VERSION'],
  ['version_codename', 'VERSION_CODENAME'],
  ['version_id', 'VERSION_ID'],
];

interface Release {
  info: Labels;
  version: number;
  versionLabels: Labels;
}

export function releaseOf(env: Map<string, string>): Release {
  const info = Object.fromEntries(KEYS.map(([label, key]) => [label, env.get(key) ?? '']));
  const majorMinor = /^[0-9]+\.?[0-9]*/.exec(info.version_id!)?.[0];
  return {
    info,
    version: majorMinor ? Number(majorMinor) : 0,
    versionLabels: { id: info.id!, id_like: info.id_like!, name: info.name! },
  };
}

/** The host's os-release, under hostRoot; parsed again only when the file's mtime changes. */
export function createOsCollector(settings: MetricsConfig): Collector {
  const candidates = ['etc/os-release', 'usr/lib/os-release'];
  let cached: { path: string; mtimeMs: number; release: Release } | undefined;
  const current = (): Release | undefined => {
    for (const file of candidates) {
      const path = join(settings.hostRoot, file);
      let mtimeMs: number;
      try {
        mtimeMs = statSync(path).mtimeMs;
      } catch (err) {
        if (isAbsent(err)) continue;
        throw err;
      }
      if (cached?.path !== path || cached.mtimeMs !== mtimeMs) {
        cached = { path, mtimeMs, release: releaseOf(parseOsRelease(readKernelFileSync(path))) };
      }
      return cached.release;
    }
    return undefined;
  };
  return {
    families: [INFO, VERSION],
    async collect(emit) {
      const release = current();
      if (!release) throw new NoDataError('no os-release under hostRoot');
      emit(INFO, 1, release.info);
      if (release.version > 0) emit(VERSION, release.version, release.versionLabels);
    },
  };
}
