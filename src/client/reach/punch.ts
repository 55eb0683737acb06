import { connect, type Socket } from "node:net";
import { parseHostPort } from "../../shared/trackerInfo.js";
import { pause } from "./pause.js";

/** Between connection attempts while the other side's SYN has not opened our router yet. */
const RETRY_MS = 250;
/** Attempts at most (the signal's deadline usually ends it first). */
const MAX_ATTEMPTS = 24;

/**
 * One side of a TCP hole punch: connects from `localPort` (the port the tracker saw
 * our call come from, so our router maps it as it did then) to the other member's
 * address as the tracker saw it, while the other does the same towards us. The
 * first SYN through a router opens it for the other's; if ours was dropped, the
 * kernel's retransmission or the next attempt passes. Resolves with the connected
 * socket; rejects when `signal` ends it or every attempt failed.
 */
export async function punchConnect(
  addr: string,
  localPort: number,
  localAddress: string | undefined,
  signal: AbortSignal,
): Promise<Socket> {
  const hp = parseHostPort(addr);
  if (typeof hp === "string") throw new Error(`bad punch address ${addr}: ${hp}`);
  let last: Error = new Error("no attempt made");
  for (let n = 0; n < MAX_ATTEMPTS && !signal.aborted; n++) {
    try {
      return await attempt(hp.host, hp.port, localPort, localAddress, signal);
    } catch (err) {
      last = err as Error;
      if (signal.aborted) break;
      await pause(RETRY_MS, signal);
    }
  }
  throw signal.aborted && signal.reason instanceof Error ? signal.reason : last;
}

function attempt(
  host: string,
  port: number,
  localPort: number,
  localAddress: string | undefined,
  signal: AbortSignal,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localPort, ...(localAddress && { localAddress }) });
    const done = (err?: Error) => {
      signal.removeEventListener("abort", onAbort);
      socket.off("error", done);
      socket.off("connect", onConnect);
      if (err) {
        socket.destroy();
        reject(err);
      }
    };
    const onAbort = () => done(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    const onConnect = () => {
      done();
      socket.setNoDelay(true);
      resolve(socket);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", done);
    socket.once("connect", onConnect);
  });
}
