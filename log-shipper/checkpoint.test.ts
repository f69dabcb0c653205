import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/logger.ts';
import { Lab, tempDir } from '../test/lab/index.ts';
import { CheckpointStore } from './checkpoint.ts';

const lab = new Lab();
afterEach(() => lab.cleanup());
const log = createLogger('silent');
const fp = { len: 10, hash: 'h' };

describe('checkpoints', () => {
  it('persists acknowledged offsets atomically and loads them back', async () => {
    const file = join(await tempDir('ckpt', lab), 'logs', 'checkpoints.json');
    const store = await CheckpointStore.load(file, log);
    const e = store.track('1:2', '1', '2', fp, 0, '/c/a.log', '/p/a/0.log');
    store.ack(e, 0, 120);
    await store.persist();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      version: 1,
      files: [
        {
          dev: '1',
          ino: '2',
          fpLen: 10,
          fpHash: 'h',
          offset: 120,
          path: '/c/a.log',
          realPath: '/p/a/0.log',
          size: 120,
        },
      ],
    });
    expect(readdirSync(join(file, '..'))).toEqual(['checkpoints.json']);
    const again = await CheckpointStore.load(file, log);
    expect(again.get('1:2')).toMatchObject({ offset: 120, fp, path: '/c/a.log' });
  });

  it('ignores acknowledgements of content a truncation replaced', async () => {
    const store = await CheckpointStore.load(join(await tempDir('ckpt', lab), 'c.json'), log);
    const e = store.track('1:2', '1', '2', fp, 0, '/a', '/a');
    store.ack(e, 0, 500);
    store.truncated(e, { len: 3, hash: 'new' });
    store.ack(e, 0, 900); // a batch read before the truncation
    expect(e.offset).toBe(0);
    store.ack(e, 1, 40);
    expect(e.offset).toBe(40);
  });

  it('forgets a closed file once its last bytes are acknowledged', async () => {
    const store = await CheckpointStore.load(join(await tempDir('ckpt', lab), 'c.json'), log);
    const e = store.track('1:2', '1', '2', fp, 0, '/a', '/a');
    store.closed(e, 300);
    store.ack(e, 0, 200);
    expect(store.get('1:2')).toBe(e);
    store.ack(e, 0, 300);
    expect(store.get('1:2')).toBeUndefined();
  });

  it('moves an unusable file aside and starts empty', async () => {
    const dir = await tempDir('ckpt', lab);
    const file = join(dir, 'c.json');
    for (const body of ['{not json', JSON.stringify({ version: 99, files: [] })]) {
      writeFileSync(file, body);
      const store = await CheckpointStore.load(file, log);
      expect(store.size).toBe(0);
      expect(existsSync(file)).toBe(false);
    }
    expect(readdirSync(dir).filter((n) => n.startsWith('c.json.unusable-')).length).toBeGreaterThanOrEqual(1);
  });
});
