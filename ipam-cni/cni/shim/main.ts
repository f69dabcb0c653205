#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dispatch } from './dispatch.ts';

/**
 * `nodeward-cni`: the executable the container runtime runs. Everything is in dispatch(); this file
 * only binds it to the process. Keep imports here light — every pod start pays for them. No
 * top-level await: the SEA build runs this as CommonJS.
 */

function readStdin(): string {
  // The runtime pipes the config and closes stdin; a sync read is the fastest way to get it.
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EOF' || code === 'ENXIO') return '';
    throw err;
  }
}

void dispatch({
  getenv: (name) => process.env[name],
  readStdin: async () => readStdin(),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
}).then((code) => {
  process.exitCode = code;
});
