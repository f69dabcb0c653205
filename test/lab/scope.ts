type Cleanup = () => unknown;

/**
 * A teardown stack for one test scope. Helpers push their stop/remove steps here the moment they
 * create something, so a test that throws half-way still releases everything it started.
 */
export class Lab {
  readonly #steps: { what: string; run: Cleanup }[] = [];

  defer(what: string, run: Cleanup): void {
    this.#steps.push({ what, run });
  }

  /** Runs every step, newest first; one failing step does not stop the others. */
  async cleanup(): Promise<void> {
    const errors: Error[] = [];
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      try {
        await step.run();
      } catch (err) {
        errors.push(new Error(`cleanup of ${step.what} failed: ${messageOf(err)}`, { cause: err }));
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} lab cleanup steps failed`);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.cleanup();
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
