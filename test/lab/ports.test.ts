import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, freePorts } from './ports.ts';

describe('freePorts', () => {
  it('hands out distinct ports, never the same one twice, that can be listened on', async () => {
    const first = await freePorts(20);
    const second = await freePorts(20);
    const single = await freePort();
    const all = [...first, ...second, single];
    expect(new Set(all).size).toBe(all.length);
    for (const port of all) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
