import { connect } from "node:net";
import type { Duplex } from "node:stream";

/** Whom a download dials: the address the tracker gave, parsed, and whose it is. */
export interface DialTarget {
  /** host:port as the tracker listed it (the key of the peer in this download) */
  readonly addr: string;
  readonly host: string;
  readonly port: number;
  /** the sharer's user id, as the tracker listed it */
  readonly userId: string;
}

/**
 * Opens a byte stream to a sharer. Rejects when the connection cannot be made
 * (an error with a `code` such as ECONNREFUSED reads best in show_downloads);
 * an aborted signal must end the attempt and destroy what it opened.
 */
export type Dialer = (target: DialTarget, signal: AbortSignal) => Promise<Duplex>;

/** Plain TCP, no delay (requests are small and the pipeline waits on each). */
export const tcpDialer: Dialer = (target, signal) =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    const settle = () => {
      signal.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      socket.off("connect", onConnect);
    };
    const onAbort = () => {
      settle();
      socket.destroy();
      reject(signal.reason);
    };
    const onError = (err: Error) => {
      settle();
      reject(err);
    };
    const onConnect = () => {
      settle();
      resolve(socket);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("connect", onConnect);
  });
