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

const PIN_HOW =
  "put its new fingerprint (./tracker prints it at start) as the line's third field in tracker_info.txt";

const addrOf = (t: TrackerAddress) => formatHostPort(t.host, t.port);

/**
 * Which keys the trackers of one tracker_info.txt may present. The file is the unit of
 * trust, not each address: every tracker of one store presents the store's key, so
 * once any tracker of the file is met (or pinned), every other one must present that
 * key, and an address first met after a failover is no first use. In order:
 *
 * 1. the fingerprint its own line pins;
 * 2. else, when other lines pin fingerprints, one of those;
 * 3. else what known_trackers records for its address (a key, or `ca`: a certificate
 *    a system CA issued for its IP);
 * 4. else, when known_trackers records keys for other trackers of the file, one of
 *    those; when it records only `ca` for them, a CA-issued certificate;
 * 5. else (the file's first use) whatever it presents, recorded: its key, or `ca`
 *    when a system CA vouched for it.
 *
 * A CA-issued certificate is enough only where known_trackers records `ca` (3, 4) or
 * nothing yet for the file (5): it never overrides a fingerprint the file pins or the
 * client recorded.
 */
export class TrackerTrust {
  readonly #trackers: readonly TrackerAddress[];
  readonly #known: KnownTrackers;

  constructor(trackers: readonly TrackerAddress[], known: KnownTrackers) {
    this.#trackers = trackers;
    this.#known = known;
  }

  /** Undefined when the tracker `t` at the other end of `socket` passes, else the error. */
  judge(t: TrackerAddress, socket: TLSSocket): GsError | undefined {
    const addr = addrOf(t);
    const who = `tracker ${t.no} at ${addr}`;
    const cert = socket.getPeerX509Certificate();
    if (!cert) return new GsError("TRACKER_KEY_MISMATCH", `${who} presented no certificate`);
    const seen = certificateFingerprint(cert);
    // node checked the chain against the CAs and the certificate against t.host (passed to connect)
    const byCa = socket.authorized;
    const mismatch = (expected: string, accept: string) =>
      new GsError(
        "TRACKER_KEY_MISMATCH",
        `${who} presented key ${seen}, but ${expected}: someone may be impersonating it, so nothing was sent. ` +
          `If the tracker's key changed legitimately, ${accept}`,
      );
    const oneKey = "(every tracker of one tracker_info.txt presents one key)";

    if (t.fingerprint !== undefined)
      return seen === t.fingerprint ? undefined : mismatch(`tracker_info.txt pins ${t.fingerprint}`, PIN_HOW);
    const pinned = this.#trackers.filter((o) => o.fingerprint !== undefined);
    if (pinned.length > 0) {
      if (pinned.some((o) => o.fingerprint === seen)) return undefined;
      const pins = pinned.map((o) => `${o.fingerprint} for tracker ${o.no}`).join(", ");
      return mismatch(`tracker_info.txt pins ${pins} ${oneKey}`, PIN_HOW);
    }

    const known = this.#known.all();
    const met = this.#trackers.flatMap((o) => {
      const key = known.get(addrOf(o));
      return key === undefined ? [] : [{ o, key }];
    });
    const file = this.#known.path ?? "this client's known trackers";
    // a re-keyed store: every line of the file that records another key goes, and the next connection is a first use
    const stale = met.filter((m) => m.key !== seen).map((m) => `'${addrOf(m.o)} …'`);
    const deleteHow = `delete the line${stale.length > 1 ? "s" : ""} ${stale.join(", ")} from ${this.#known.path ?? "known_trackers"}, or ${PIN_HOW}`;
    const own = known.get(addr);
    if (own !== undefined) {
      if (own === CA_VERIFIED ? byCa : own === seen) return undefined;
      return mismatch(
        own === CA_VERIFIED
          ? `${file} records that it had a certificate from a trusted CA`
          : `${file} records ${own}`,
        deleteHow,
      );
    }
    const keys = met.filter((m) => m.key !== CA_VERIFIED);
    if (keys.length > 0) {
      if (!keys.some((m) => m.key === seen)) {
        const records = keys.map((m) => `${m.key} for tracker ${m.o.no} at ${addrOf(m.o)}`).join(", ");
        return mismatch(`${file} records ${records} ${oneKey}`, deleteHow);
      }
    } else if (met.length > 0 && !byCa) {
      const others = met.map((m) => `tracker ${m.o.no} at ${addrOf(m.o)}`).join(", ");
      return mismatch(
        `${file} records that ${others} had a certificate from a trusted CA, and so must every tracker of tracker_info.txt`,
        deleteHow,
      );
    }
    this.#known.record(addr, keys.length === 0 && byCa ? CA_VERIFIED : seen);
    return undefined;
  }
}

/**
 * An HTTP agent whose connections are TLS 1.3 to one tracker, each handed to HTTP
 * only once TrackerTrust has passed it: a tracker that fails gets the handshake and
 * nothing else, not a byte of any request. A refusal is a TRACKER_KEY_MISMATCH error
 * on the request.
 */
export class TrackerAgent extends Agent {
  readonly #tracker: TrackerAddress;
  readonly #trust: TrackerTrust;

  /** Told each connection's TCP socket once it is judged (a hole punch needs its local port). */
  readonly #onConnected: ((tcp: Socket) => void) | undefined;

  constructor(
    tracker: TrackerAddress,
    trust: TrackerTrust,
    opts: AgentOptions = {},
    onConnected?: (tcp: Socket) => void,
  ) {
    super(opts);
    this.#tracker = tracker;
    this.#trust = trust;
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
      rejectUnauthorized: false, // TrackerTrust decides, before anything is sent
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
        problem = this.#trust.judge(this.#tracker, socket);
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
