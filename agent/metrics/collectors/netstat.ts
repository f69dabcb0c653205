import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, isAbsent, numberFrom, readKernelFileHeld } from '../procfs.ts';

/**
 * /proc/net/netstat and /proc/net/snmp: pairs of lines, `Proto: Name1 Name2 …` then
 * `Proto: v1 v2 …`. Keys are `Proto_Name`, as node_exporter names the series.
 */
export function parseNetstat(
  text: string,
  where: string,
  into = new Map<string, number>(),
): Map<string, number> {
  const lines = text.split('\n').filter((l) => l !== '');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = fieldsOf(lines[i]!);
    const values = fieldsOf(lines[i + 1]!);
    const protocol = names[0]!.replace(/:$/, '');
    if (names.length !== values.length || values[0] !== names[0]) {
      throw new Error(`${where}: ${protocol}: ${names.length} names but ${values.length} values`);
    }
    for (let j = 1; j < names.length; j++)
      into.set(`${protocol}_${names[j]}`, numberFrom(values[j], `${where} ${protocol}${names[j]}`));
  }
  return into;
}

/** /proc/net/snmp6: `Ip6InReceives 123` per line; the protocol is the name up to its "6". */
export function parseSnmp6(text: string, into = new Map<string, number>()): Map<string, number> {
  for (const line of text.split('\n')) {
    const [name, value] = fieldsOf(line);
    if (!name || value === undefined) continue;
    const six = name.indexOf('6');
    if (six < 0) continue;
    into.set(
      `${name.slice(0, six + 1)}_${name.slice(six + 1)}`,
      numberFrom(value, `/proc/net/snmp6 ${name}`),
    );
  }
  return into;
}

/** Every statistic of the three files, by `Proto_Name`; snmp6 is absent with IPv6 disabled. */
export function readNetstat(procRoot: string): Map<string, number> {
  const all = parseNetstat(readKernelFileHeld(procRoot, 'net/netstat'), '/proc/net/netstat');
  parseNetstat(readKernelFileHeld(procRoot, 'net/snmp'), '/proc/net/snmp', all);
  try {
    parseSnmp6(readKernelFileHeld(procRoot, 'net/snmp6'), all);
  } catch (err) {
    if (!isAbsent(err)) throw err;
  }
  return all;
}

/**
 * `untyped` as node_exporter has them (counters and gauges like CurrEstab mixed). Families are
 * fixed at creation from the running kernel's fields, which only a reboot changes.
 */
export function createNetstatCollector(settings: MetricsConfig): Collector {
  const fields = new RegExp(settings.netstat.fields);
  const families = new Map<string, Family>();
  try {
    for (const key of readNetstat(settings.procRoot).keys()) {
      if (!fields.test(key)) continue;
      const protocol = key.slice(0, key.indexOf('_'));
      const name = key.slice(key.indexOf('_') + 1);
      families.set(key, family(`node_netstat_${key}`, 'untyped', `Statistic ${protocol}${name}.`));
    }
  } catch {
    // No families to register; collect() reports the problem at every scrape.
  }
  return {
    families: [...families.values()],
    async collect(emit) {
      const values = readNetstat(settings.procRoot);
      if (families.size === 0 && values.size > 0) {
        throw new Error('/proc/net/netstat was unreadable when the agent started: no fields registered');
      }
      for (const [key, f] of families) {
        const v = values.get(key);
        if (v !== undefined) emit(f, v);
      }
    },
  };
}
