import type { Duplex } from "node:stream";

/** Whom a download dials: the address the tracker gave, parsed, and whose it is. */
export interface DialTarget {
  /** host:port as the tracker listed it (the key of the peer in this download) */
  readonly addr: string;
  readonly host: string;
  readonly port: number;
  /** the sharer's user id, as the tracker listed it */
  readonly userId: string;
  /** the key the sharer's peer server must prove (peerKey.ts), as the tracker listed it */
  readonly key: string;
  /** the tracker thinks the sharer is behind a router (its own address differs from the one seen) */
  readonly nat?: boolean;
  /** the file the link is for (the download sets it): a dialer that asks the tracker for a path names it */
  readonly file?: { readonly groupId: string; readonly name: string };
}

/**
 * How a connection to a peer was made: dialled, dialled back by the sharer, a hole
 * punched through both routers, or through a tracker's relay.
 */
export type PathKind = "direct" | "reversed" | "punched" | "relayed";

/** A count per path kind, every kind at 0. */
export function byPath(): Record<PathKind, number> {
  return { direct: 0, reversed: 0, punched: 0, relayed: 0 };
}

/** A dialer's error when no path to the sharer worked: `why` says what each met. */
export class NoPathError extends Error {
  readonly userId: string;
  readonly why: string;

  constructor(userId: string, why: string) {
    super(`no path to ${userId}: ${why}`);
    this.name = "NoPathError";
    this.userId = userId;
    this.why = why;
  }
}

/** A dialer's stream may say how it was made (show_downloads prints it); absent means direct. */
export type Reached = Duplex & { path?: PathKind };

/**
 * Opens a byte stream to a sharer (reach/reachingDialer.ts over dialPeer.ts: TLS 1.3, keys proved both ways). Rejects when the connection cannot be made
 * (an error with a `code` such as ECONNREFUSED reads best in show_downloads);
 * an aborted signal must end the attempt and destroy what it opened.
 */
export type Dialer = (target: DialTarget, signal: AbortSignal) => Promise<Reached>;
