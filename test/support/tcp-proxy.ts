/**
 * A TCP forwarder on 127.0.0.1 whose backend can be switched or whose connections can be cut,
 * to put "a different server behind the same address" or "a dropped network" in front of a client.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

export interface TcpProxy {
  readonly port: number;
  /** new connections go to this port from now on */
  setTarget(port: number): void;
  /** destroys every open connection (both sides), like a network drop */
  cutAll(): void;
  /** stops moving bytes on open connections without closing them: a half-open connection */
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let target = targetPort;
  let frozen = false;
  const open = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    if (frozen) for (const s of pair) s.pause();
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    setTarget: (port) => {
      target = port;
    },
    cutAll: () => {
      for (const s of open) s.destroy();
    },
    freeze: () => {
      frozen = true;
      for (const pair of pairs) for (const s of pair) s.pause();
    },
    thaw: () => {
      frozen = false;
      for (const pair of pairs) for (const s of pair) s.resume();
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
