/**
 * The fault proxy the database tests rely on: a black hole holds bytes and delivers them once on resume, and resuming
 * a proxy that is already forwarding changes nothing (an earlier version piped the sockets again, so every later byte
 * arrived twice — the MariaDB driver then saw packets out of order and threw outside any request).
 */
import test from 'ava';
import { createServer, connect, type Server } from 'node:net';
import { TcpProxy } from './helpers/tcp-proxy.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('bytes pass once through black holes and repeated resumes, in order', async (t) => {
  const echo: Server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  const proxy = await new TcpProxy({ host: '127.0.0.1', port: (echo.address() as { port: number }).port }).start();
  const client = connect(proxy.port, '127.0.0.1');
  t.teardown(async () => {
    client.destroy();
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });
  let received = '';
  client.on('data', (chunk) => (received += chunk));
  const send = async (text: string) => {
    client.write(text);
    await pause(100);
  };
  await send('a');
  proxy.resume();
  await send('b');
  proxy.blackHole();
  await send('c');
  t.is(received, 'ab', 'nothing passes a black hole');
  proxy.blackHole();
  proxy.resume();
  proxy.resume();
  await send('d');
  t.is(received, 'abcd');
});
