import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { sourceIp } from "./addresses.js";

/** How many connections the tracker holds, and how soon one must be of use; the README's Limits list the defaults. */
export interface ConnectionLimits {
  /** TCP connections at once, from everywhere: each holds a file descriptor. */
  total: number;
  /** TCP connections at once from one address (IPv6: one /64); this host's loopback address is exempt. */
  perAddress: number;
  /**
   * A connection must finish its TLS handshake this long after the accept (node's own
   * bound is 120 s), then send its first request (headers and all) within as long again.
   */
  handshakeMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  // a signal poll each for 10,000 online clients; the open-file limit may lower it (connectionCap)
  total: 10_000,
  // a client keeps at most 8 connections to a tracker (its agent's maxSockets) and a
  // relay leg per circuit: a few dozen clients behind one router's address
  perAddress: 256,
  // a client gives up on a tracker's handshake at 10 s: the tracker never cuts one it
  // still waits for. On a 2-core box at load average 20, with the tracker-abuse floods,
  // handshakes took up to 8.5 s (median 3 s, p99 6.8 s, 10,517 connections) and the
  // first request came at most 234 ms after them; without the floods, accept to first
  // request took 2 to 656 ms
  handshakeMs: 10_000,
};

/**
 * Every client on the tracker's own host connects from it (tests, a TCP proxy in front):
 * it gets only the total cap, as the peer server exempts it from its per-address one.
 */
const THIS_HOST = new Set(["127.0.0.1", "::1"]);

/** File descriptors kept out of `total`: the store's (a PostgreSQL pool, SQLite's files), stdio, threads. */
const FD_RESERVE = 256;

/** How often at most the tracker logs that it turned connections away (a flood is one line a period, not one a connection). */
const REPORT_EVERY_MS = 10_000;

/**
 * The connection cap this process can hold: `wanted`, or less when the open-file
 * limit (node raises the soft limit to the hard one at start) leaves less room.
 * Undefined when it is `wanted`; the limit is read on Linux only.
 */
export function connectionCap(wanted: number): { cap: number; fds: number } | undefined {
  let text: string;
  try {
    text = readFileSync("/proc/self/limits", "utf8");
  } catch {
    return undefined;
  }
  const fds = Number(/^Max open files\s+(\d+)/m.exec(text)?.[1]);
  if (!Number.isFinite(fds) || fds - FD_RESERVE >= wanted) return undefined;
  return { cap: Math.max(1, fds - FD_RESERVE), fds };
}

/** Who an address's connections count against: the IPv4 address, or the IPv6 /64 (one subscriber's prefix). */
export function addressKey(remote: string): string {
  const ip = sourceIp(remote);
  if (!ip.includes(":")) return ip;
  const [head, tail = ""] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || "0", 16).toString(16))
    .join(":")}::/64`;
}

interface Conn {
  readonly tcp: Socket;
  readonly key: string;
  /** requests in flight: a connection with none may be closed for a newcomer */
  busy: number;
  /** from the handshake's end to the first request: closes the connection when handshakeMs is up */
  first: NodeJS.Timeout | undefined;
}

/** What the guard did since the tracker started (the tests read it). */
export interface ConnectionStats {
  open: number;
  refused: number;
  evicted: number;
  timedOut: number;
}

/**
 * Bounds the connections of the tracker's HTTPS server, counted at the TCP accept,
 * before a byte of TLS: at most `perAddress` from one address (the newcomer is closed
 * at once) and `total` in all. When the total is reached, the connection that has
 * been doing nothing the longest (no request yet, or kept alive between requests)
 * is closed for the newcomer; one with a request in flight (a signal poll, an
 * upload) or upgraded to a relay leg is never closed for another. A connection that
 * has not finished TLS within `handshakeMs`, or sent its first request within as
 * long again, is closed: idle sockets cost an attacker a connect every few seconds
 * each, not one per two minutes.
 */
export function guardConnections(
  server: HttpsServer,
  limits: ConnectionLimits,
  warn: (line: string) => void,
): ConnectionStats {
  const stats: ConnectionStats = { open: 0, refused: 0, evicted: 0, timedOut: 0 };
  const perAddress = new Map<string, number>();
  /** connections with nothing in flight, the longest idle first (a Map keeps insertion order) */
  const idle = new Map<Socket, Conn>();
  /** accepted connections by peer, until TLS hands over the socket that carries their requests */
  const accepted = new Map<string, Conn>();
  const byTls = new WeakMap<TLSSocket, Conn>();
  const peerOf = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`;

  let reported = { refused: 0, evicted: 0, timedOut: 0 };
  let report: NodeJS.Timeout | undefined;
  const noteTurnedAway = () => {
    report ??= setTimeout(() => {
      report = undefined;
      const n = {
        refused: stats.refused - reported.refused,
        evicted: stats.evicted - reported.evicted,
        timedOut: stats.timedOut - reported.timedOut,
      };
      reported = { ...stats };
      warn(
        `warning: connections: ${n.refused} refused (over ${limits.perAddress} from one address, or ${limits.total} in all with none idle), ` +
          `${n.evicted} idle closed for newcomers, ${n.timedOut} with no request ${limits.handshakeMs / 1000} s after TLS, ` +
          `in the last ${REPORT_EVERY_MS / 1000} s; ${stats.open} open`,
      );
    }, REPORT_EVERY_MS).unref();
  };

  const released = new WeakSet<Conn>();
  const release = (c: Conn) => {
    if (released.has(c)) return;
    released.add(c);
    clearTimeout(c.first);
    idle.delete(c.tcp);
    accepted.delete(peerOf(c.tcp));
    stats.open--;
    const n = (perAddress.get(c.key) ?? 1) - 1;
    if (n === 0) perAddress.delete(c.key);
    else perAddress.set(c.key, n);
  };
  const close = (c: Conn) => {
    release(c);
    c.tcp.destroy();
  };

  // first: a refused connection is closed before TLS wraps it
  server.prependListener("connection", (tcp: Socket) => {
    const remote = tcp.remoteAddress;
    if (remote === undefined) {
      tcp.destroy(); // reset before we got to it
      return;
    }
    const key = addressKey(remote);
    const mine = perAddress.get(key) ?? 0;
    if (!THIS_HOST.has(sourceIp(remote)) && mine >= limits.perAddress) {
      stats.refused++;
      noteTurnedAway();
      tcp.destroy();
      return;
    }
    if (stats.open >= limits.total) {
      const oldest = idle.values().next().value;
      if (!oldest) {
        stats.refused++;
        noteTurnedAway();
        tcp.destroy();
        return;
      }
      stats.evicted++;
      noteTurnedAway();
      close(oldest);
    }
    // the handshake's bound is node's (handshakeTimeout), the first request's ours
    const c: Conn = { tcp, key, busy: 0, first: undefined };
    stats.open++;
    perAddress.set(key, mine + 1);
    idle.set(tcp, c);
    accepted.set(peerOf(tcp), c);
    tcp.on("close", () => release(c));
  });

  server.on("secureConnection", (tls: TLSSocket) => {
    const peer = peerOf(tls);
    const c = accepted.get(peer);
    if (!c) return;
    accepted.delete(peer);
    byTls.set(tls, c);
    c.first = setTimeout(() => {
      stats.timedOut++;
      noteTurnedAway();
      close(c);
    }, limits.handshakeMs);
    c.first.unref();
  });

  const started = (req: IncomingMessage): Conn | undefined => {
    const c = byTls.get(req.socket as TLSSocket);
    if (!c || released.has(c)) return undefined;
    clearTimeout(c.first);
    c.first = undefined;
    c.busy++;
    idle.delete(c.tcp);
    return c;
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const c = started(req);
    if (!c) return;
    res.once("close", () => {
      // kept alive for the next request: the longest idle is the first to go
      if (--c.busy === 0 && !released.has(c)) idle.set(c.tcp, c);
    });
  });
  // a relay leg: busy for as long as it lives
  server.on("upgrade", (req: IncomingMessage) => void started(req));
  server.on("close", () => clearTimeout(report));
  return stats;
}
