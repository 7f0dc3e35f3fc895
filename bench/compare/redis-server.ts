/**
 * The Redis server of the Redis peer, started by the bench for the run (so its CPU, read from /proc like the servers',
 * is the peer's own, and no other user of a shared Redis is measured with it): `redis-server` on a free loopback
 * port, its files in the run's work directory, persistence as a durable deployment would run it (append-only file,
 * fsync every second; no RDB snapshots during the run). Stopped with SIGTERM at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../../test/helpers/server.js';

export interface RedisServer {
  url: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

/** Whether `redis-server` can be run here (the Redis peer is skipped, with a note, when it cannot). */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function startRedisServer(workDir: string): Promise<RedisServer> {
  const port = await freePort();
  const dir = join(workDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--logfile',
      join(dir, 'redis.log'),
    ],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  for (let attempt = 0; attempt < 100; attempt++) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined); // not listening yet: the connect below rejects, and we try again
    try {
      await client.connect();
      const info = await client.info('server');
      return { url, pid: child.pid!, version: /redis_version:(\S+)/.exec(info)?.[1] ?? '?', stop };
    } catch {
      await sleep(50);
    } finally {
      client.disconnect();
    }
  }
  await stop();
  throw new Error(`redis-server did not answer on port ${port}`);
}
