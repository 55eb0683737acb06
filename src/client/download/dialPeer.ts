import { connect as tcpConnect } from "node:net";
import type { Duplex } from "node:stream";
import { connect, createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import { peerKeyOf } from "../../shared/peerKey.js";
import { TLS_VERSION } from "../../shared/tlsPolicy.js";
import type { PeerIdentity } from "../peerIdentity.js";

/** A sharer as the tracker hands it out: where it is, and the key its peer server must prove. */
export interface PeerTarget {
  readonly host: string;
  readonly port: number;
  /** peerKeyOf of the sharer's key, from the tracker */
  readonly key: string;
}

/**
 * One TLS context per identity, made at its first dial: making one parses the key and
 * certificate, which in a 16-downloader flash crowd's profiles came to about 3% of
 * every client's samples when made per connection.
 */
const contexts = new WeakMap<PeerIdentity, SecureContext>();
function contextOf(identity: PeerIdentity): SecureContext {
  let c = contexts.get(identity);
  if (!c) {
    c = createSecureContext({ key: identity.key, cert: identity.cert, ...TLS_VERSION });
    contexts.set(identity, c);
  }
  return c;
}

/** What a refused sharer's error carries as its `code` (show_downloads and logs print it). */
export const IMPOSTOR = "IMPOSTOR";

export interface DialOptions {
  /** A stream to run TLS over (a relay leg) instead of a TCP connection to host:port. */
  transport?: Duplex;
  /** ALPN protocols to offer: REVERSED_ALPN when a sharer dials a downloader back. */
  alpn?: string[];
  /** Wraps the transport before TLS runs over it (SpeedLimits.link: the speed limits). */
  wrap?: (transport: Duplex) => Duplex;
}

/**
 * Opens TLS 1.3 to a sharer, proving our own key (`identity`, which the ticket names),
 * and resolves only once the sharer has proved the key the tracker gave for it. One
 * that does not is an impostor: the connection ends after the TLS handshake, with
 * nothing of ours sent (no ticket, no file id), and the promise rejects with code
 * IMPOSTOR. An aborted signal ends the attempt and destroys what it opened.
 */
export function dialPeer(
  target: PeerTarget,
  identity: PeerIdentity,
  signal: AbortSignal,
  { transport, alpn, wrap }: DialOptions = {},
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    let tcp = transport;
    if (!tcp) {
      const direct = tcpConnect({ host: target.host, port: target.port });
      direct.setNoDelay(true); // requests are small and the pipeline waits on each
      tcp = direct;
    }
    if (wrap) tcp = wrap(tcp);
    const socket = connect({
      socket: tcp,
      secureContext: contextOf(identity),
      rejectUnauthorized: false, // self-signed: the key is checked against the tracker's word below
      ...(alpn && { ALPNProtocols: alpn }),
      ...TLS_VERSION,
    });
    const settle = () => {
      signal.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      socket.off("secureConnect", onSecure);
    };
    const onAbort = () => {
      settle();
      socket.destroy();
      tcp.destroy();
      reject(signal.reason);
    };
    const onError = (err: Error) => {
      settle();
      socket.destroy();
      tcp.destroy();
      reject(err);
    };
    const onSecure = () => {
      settle();
      const cert = socket.getPeerX509Certificate();
      if (cert && peerKeyOf(cert) === target.key) {
        resolve(socket);
        return;
      }
      socket.destroy();
      const err: NodeJS.ErrnoException = new Error("the peer did not prove the key the tracker gave for it");
      err.code = IMPOSTOR;
      reject(err);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("secureConnect", onSecure);
  });
}
