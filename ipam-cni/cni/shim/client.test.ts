import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { CniRequest } from '../protocol.ts';
import { AgentUnreachable, sendToAgent } from './client.ts';

const dir = mkdtempSync(join(tmpdir(), 'nodeward-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const req: CniRequest = {
  v: 1,
  command: 'STATUS',
  containerID: '',
  netns: '',
  ifName: '',
  args: '',
  path: '/x',
  config: '{}',
};

it('a SIGKILLed agent (stale socket file) is unreachable, not an error', async () => {
  const socket = join(dir, 'killed.sock');
  const child = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(socket)})`,
  ]);
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  expect(existsSync(socket)).toBe(true);
  await expect(sendToAgent(socket, req, 1000)).rejects.toThrow(AgentUnreachable);
  await expect(sendToAgent(socket, req, 1000)).rejects.toThrow(/ECONNREFUSED/);
});

it('an agent that does not answer in time is unreachable after the timeout', async () => {
  const socket = join(dir, 'hung.sock');
  const server = createServer(() => {});
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const t = Date.now();
    await expect(sendToAgent(socket, req, 300)).rejects.toThrow(/within 300 ms/);
    expect(Date.now() - t).toBeGreaterThanOrEqual(290);
  } finally {
    server.close();
  }
});
