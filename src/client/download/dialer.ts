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
}

/**
 * Opens a byte stream to a sharer (dialPeer.ts: TLS 1.3, keys proved both ways). Rejects when the connection cannot be made
 * (an error with a `code` such as ECONNREFUSED reads best in show_downloads);
 * an aborted signal must end the attempt and destroy what it opened.
 */
export type Dialer = (target: DialTarget, signal: AbortSignal) => Promise<Duplex>;
