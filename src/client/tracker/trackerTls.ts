import { Agent, type AgentOptions, type ClientRequestArgs } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { connect, type TLSSocket } from "node:tls";
import { GsError } from "../../shared/errors.js";
import { TLS_VERSION } from "../../shared/tlsPolicy.js";
import { formatHostPort, type TrackerAddress } from "../../shared/trackerInfo.js";
import { certificateFingerprint } from "../../shared/x509.js";
import { CA_VERIFIED, type KnownTrackers } from "./knownTrackers.js";

/** A tracker's TLS handshake must be over within this time. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Whether the tracker at the other end of `socket` is the one we mean, in order:
 * the fingerprint tracker_info.txt pins; a certificate a system CA issued for its
 * IP; the key recorded at first use (known_trackers). A tracker met for the first
 * time is trusted and recorded. Undefined when it passes, else the error.
 */
export function judgeTracker(
  t: TrackerAddress,
  socket: TLSSocket,
  known: KnownTrackers,
): GsError | undefined {
  const addr = formatHostPort(t.host, t.port);
  const who = `tracker ${t.no} at ${addr}`;
  const cert = socket.getPeerX509Certificate();
  if (!cert) return new GsError("TRACKER_KEY_MISMATCH", `${who} presented no certificate`);
  const seen = certificateFingerprint(cert);
  // node checked the chain against the CAs and the certificate against t.host (passed to connect)
  const byCa = socket.authorized;
  const mismatch = (expected: string, where: string, accept: string) =>
    new GsError(
      "TRACKER_KEY_MISMATCH",
      `${who} presented key ${seen}, but ${where} ${expected}: someone may be impersonating it, so nothing was sent. ` +
        `If the tracker's key changed legitimately, ${accept}`,
    );
  const pinHow =
    "put its new fingerprint (./tracker prints it at start) as the line's third field in tracker_info.txt";
  if (t.fingerprint !== undefined) {
    return seen === t.fingerprint ? undefined : mismatch(t.fingerprint, "tracker_info.txt pins", pinHow);
  }
  const recorded = known.get(addr);
  if (byCa) {
    if (recorded === undefined) known.record(addr, CA_VERIFIED);
    return undefined;
  }
  if (recorded === undefined) {
    known.record(addr, seen);
    return undefined;
  }
  if (recorded === seen) return undefined;
  const where = `${known.path ?? "this client's known trackers"} records`;
  const accept = `delete the line '${addr} …' from ${known.path ?? "known_trackers"}, or ${pinHow}`;
  return mismatch(
    recorded === CA_VERIFIED ? "a certificate from a trusted CA" : recorded,
    recorded === CA_VERIFIED ? `${where} that it had` : where,
    accept,
  );
}

/**
 * An HTTP agent whose connections are TLS 1.3 to one tracker, each handed to HTTP
 * only once judgeTracker has passed it: a tracker that fails gets the handshake and
 * nothing else, not a byte of any request. A refusal is a TRACKER_KEY_MISMATCH error
 * on the request.
 */
export class TrackerAgent extends Agent {
  readonly #tracker: TrackerAddress;
  readonly #known: KnownTrackers;

  /** Told each connection's TCP socket once it is judged (a hole punch needs its local port). */
  readonly #onConnected: ((tcp: Socket) => void) | undefined;

  constructor(
    tracker: TrackerAddress,
    known: KnownTrackers,
    opts: AgentOptions = {},
    onConnected?: (tcp: Socket) => void,
  ) {
    super(opts);
    this.#tracker = tracker;
    this.#known = known;
    this.#onConnected = onConnected;
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex {
    const tcp = netConnect({
      host: this.#tracker.host,
      port: this.#tracker.port,
      ...(options.localAddress && { localAddress: options.localAddress }),
    });
    const socket = connect({
      socket: tcp,
      host: this.#tracker.host, // what a CA-issued certificate is checked against
      rejectUnauthorized: false, // judgeTracker decides, before anything is sent
      ...TLS_VERSION,
    });
    const timer = setTimeout(
      () => socket.destroy(new Error("TLS handshake timed out")),
      HANDSHAKE_TIMEOUT_MS,
    );
    const failed = (err: Error) => {
      clearTimeout(timer);
      callback?.(err, socket);
    };
    socket.once("error", failed);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      socket.off("error", failed);
      let problem: GsError | undefined;
      try {
        problem = judgeTracker(this.#tracker, socket, this.#known);
      } catch (err) {
        problem = new GsError(
          "TRACKER_KEY_MISMATCH",
          `cannot check the tracker's key: ${(err as Error).message}`,
        );
      }
      if (problem) {
        socket.destroy();
        callback?.(problem, socket);
      } else {
        this.#onConnected?.(tcp);
        callback?.(null, socket);
      }
    });
    // the socket reaches HTTP through the callback, once judged
    return undefined as unknown as Duplex;
  }
}
