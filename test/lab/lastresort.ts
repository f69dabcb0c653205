/**
 * Synchronous teardown for a test process that exits without running its afterAll hooks
 * (process.exit, an uncaught error, a runner tearing its worker down). 'kill' steps run first so
 * that 'cleanup' steps (unmounting, deleting dirs and netns) do not race live services.
 */
export type LastResortPhase = 'kill' | 'cleanup';

const steps: Record<LastResortPhase, Set<() => void>> = { kill: new Set(), cleanup: new Set() };
let installed = false;

/** Registers a step for the process 'exit' handler; returns the function that unregisters it. */
export function onLastResort(step: () => void, phase: LastResortPhase = 'kill'): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runAll);
  }
  steps[phase].add(step);
  return () => {
    steps[phase].delete(step);
  };
}

function runAll(): void {
  for (const phase of ['kill', 'cleanup'] as const) {
    for (const step of steps[phase]) {
      try {
        step();
      } catch {
        // Keep going: the next step may still free something.
      }
    }
  }
}
