import { createServer, type Server } from 'node:net';

// Ports this process already handed out: the kernel may offer a closed port again, and two
// services of one test must never be given the same one.
const handedOut = new Set<number>();

/** n distinct TCP ports on 127.0.0.1 that were free a moment ago. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    // Every listener stays open until all n are chosen, so the kernel cannot repeat one.
    while (ports.length < n) {
      const server = createServer();
      servers.push(server);
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const addr = server.address();
          if (addr && typeof addr === 'object') resolve(addr.port);
          else reject(new Error('listener has no port'));
        });
      });
      if (!handedOut.has(port)) {
        handedOut.add(port);
        ports.push(port);
      }
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
  return ports;
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}
