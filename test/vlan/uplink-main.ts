/**
 * Runs the VLAN uplink scenario (uplink-scenario.ts) as a process and prints its outcome as JSON:
 * what the VLAN lab runs inside a VM. Exit status 1 with the error on stderr if it threw.
 */
import { vlanUplinkScenario } from './uplink-scenario.ts';

try {
  process.stdout.write(`${JSON.stringify(await vlanUplinkScenario())}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
}
