import net from 'node:net';

/**
 * A loopback TCP proxy in front of Redis that can hold back Redis's answers on the connections
 * that sent a given command (`XREAD`: an instance's event reader), while its other connections
 * (replay, publish) go on: a real instance whose delivery lags behind, on demand.
 */
export class PausableProxy {
  private paused = false;
  private readonly held = new Map<net.Socket, Buffer[]>();
  private readonly sockets = new Set<net.Socket>();

  private port = 0;

  private constructor(private readonly server: net.Server) {}

  /** @param command the command (lower case) whose connections `pause` holds back */
  static async start(target: { host: string; port: number }, command = 'xread'): Promise<PausableProxy> {
    const server = net.createServer();
    const proxy = new PausableProxy(server);
    server.on('connection', (client) => proxy.relay(client, target, command));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy.port = (server.address() as net.AddressInfo).port;
    return proxy;
  }

  private relay(client: net.Socket, target: { host: string; port: number }, command: string): void {
    const upstream = net.connect(target);
    let readsEvents = false;
    this.sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      if (!readsEvents && chunk.toString('latin1').toLowerCase().includes(command)) readsEvents = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      const held = this.held.get(client);
      if (held !== undefined || (readsEvents && this.paused)) this.held.set(client, [...(held ?? []), chunk]);
      else client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.held.delete(client);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** From now on, holds Redis's answers on every connection that has sent the command, until `resume`. */
  pause(): void {
    this.paused = true;
  }

  /** Delivers what was held, in order, and stops holding. */
  resume(): void {
    this.paused = false;
    for (const [client, chunks] of this.held) for (const chunk of chunks) client.write(chunk);
    this.held.clear();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
