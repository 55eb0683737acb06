import type { Subscribe } from "./events.js";
import { isLoopback } from "./guard.js";
import type { RouteTable } from "./routes.js";
import { WebServer, type WebLog } from "./server.js";
import { loadWebTls, loadWebToken } from "./token.js";

export interface StartWebOptions {
  stateDir: string;
  host: string;
  port: number;
  /** `--web-allow-host NAME`, each time it was given. */
  allowHosts: readonly string[];
  routes: RouteTable;
  events?: Subscribe;
  log?: WebLog;
}

/**
 * The web UI as the client starts it: the token from the state folder, HTTPS with the
 * web key when the address is not loopback. Print `startLines()` once it is up.
 */
export async function startWeb(o: StartWebOptions): Promise<WebServer> {
  const token = await loadWebToken(o.stateDir);
  const tls = isLoopback(o.host) ? undefined : await loadWebTls(o.stateDir, o.host);
  return await WebServer.start({
    host: o.host,
    port: o.port,
    token,
    allowHosts: o.allowHosts,
    routes: o.routes,
    ...(tls && { tls }),
    ...(o.events && { events: o.events }),
    ...(o.log && { log: o.log }),
  });
}
