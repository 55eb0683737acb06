import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Signal } from "../../shared/api.js";
import { GsError } from "../../shared/errors.js";
import { parseHostPort } from "../../shared/trackerInfo.js";
import { dialPeer } from "../download/dialPeer.js";
import type { SpeedLimits } from "../limits/limits.js";
import type { PeerIdentity } from "../peerIdentity.js";
import type { PeerServer } from "../serving/peerServer.js";
import type { ShareRegistry } from "../serving/shares.js";
import type { TrackerClient } from "../tracker/trackerClient.js";
import { pause } from "./pause.js";
import { punchConnect } from "./punch.js";
import { REVERSED_ALPN } from "./reversals.js";

/** What answering signals needs from the client. */
export interface SignalDeps {
  tracker: Pick<TrackerClient, "call" | "openRelay" | "callFresh" | "localAddress">;
  shares: ShareRegistry;
  peerServer: PeerServer;
  identity: () => Promise<PeerIdentity>;
  warn: (warning: SignalWarning) => void;
  /** the speed limits a connection we dial back runs under (none when absent) */
  limits?: SpeedLimits;
}

/** A signal this client could not answer (its downloader goes on to its next way of reaching us). */
export interface SignalWarning {
  kind: "signal-failed";
  signal: Signal["kind"];
  reason: string;
}

/** A downloader we dial back must have proved its key within this time. */
const DIAL_BACK_TIMEOUT_MS = 5_000;
/** Our relay leg must be joined with the downloader's within this time (the relay waits 10 s). */
const RELAY_TIMEOUT_MS = 12_000;
/** Our side of a hole punch connects within this time, or it failed (the downloader gives up sooner). */
const PUNCH_TIMEOUT_MS = 4_000;
/** Signals answered at once; more are dropped (their downloaders try the next path). */
const MAX_ANSWERING = 16;
/**
 * Signals answered at once for one downloader (by its key): a member asking for
 * reversals to an address that never answers holds a quarter of the slots, not all.
 */
const MAX_ANSWERING_ONE = 4;
/** An empty answer sooner than this is followed by a pause of this long. */
const MIN_POLL_MS = 1_000;
/** After a failed poll: wait this long (doubling to the cap) before the next. */
const RETRY_MS = 1_000;
const RETRY_CAP_MS = 15_000;

/**
 * A logged-in client's long poll for what the trackers ask of it on behalf of
 * downloaders that cannot dial it: dial one back (reverse) or meet one at a
 * relay. It answers only for files it shares, and serves what comes of it exactly
 * like a connection to its port: the downloader proves its key in TLS and shows a
 * ticket naming that key.
 */
export class SignalListener {
  readonly #d: SignalDeps;
  readonly #stop = new AbortController();
  #answering = 0;
  readonly #answeringFor = new Map<string, number>();

  constructor(deps: SignalDeps) {
    this.#d = deps;
    void this.#loop();
  }

  stop(): void {
    this.#stop.abort(new Error("logged out"));
  }

  async #loop(): Promise<void> {
    let after = 0;
    let retry = RETRY_MS;
    // bounded by the session: the poll ends at logout, and a 401 ends it
    while (!this.#stop.signal.aborted) {
      const began = Date.now();
      try {
        const { signals } = await this.#d.tracker.call(
          "signals",
          { after: String(after) },
          { signal: this.#stop.signal },
        );
        retry = RETRY_MS;
        for (const s of signals) {
          after = Math.max(after, s.seq);
          this.#answer(s);
        }
        // an empty answer that came at once (a tracker that is closing, or full): not a busy loop
        if (signals.length === 0 && Date.now() - began < MIN_POLL_MS)
          await pause(MIN_POLL_MS, this.#stop.signal);
      } catch (err) {
        if (this.#stop.signal.aborted) return;
        if (err instanceof GsError && err.code === "UNAUTHORIZED") return; // the session ended
        await pause(retry, this.#stop.signal);
        retry = Math.min(RETRY_CAP_MS, retry * 2);
      }
    }
  }

  #answer(s: Signal): void {
    if (!this.#d.shares.get(s.groupId, s.fileId)) return; // not ours (any more) to serve
    const theirs = this.#answeringFor.get(s.key) ?? 0;
    if (this.#answering >= MAX_ANSWERING || theirs >= MAX_ANSWERING_ONE) return;
    this.#answering++;
    this.#answeringFor.set(s.key, theirs + 1);
    const run =
      s.kind === "reverse" ? this.#dialBack(s) : s.kind === "relay" ? this.#joinRelay(s) : this.#punch(s);
    run
      .catch((err: NodeJS.ErrnoException) => {
        if (!this.#stop.signal.aborted)
          this.#d.warn({ kind: "signal-failed", signal: s.kind, reason: err.code ?? err.message });
      })
      .finally(() => {
        this.#answering--;
        const left = (this.#answeringFor.get(s.key) ?? 1) - 1;
        if (left > 0) this.#answeringFor.set(s.key, left);
        else this.#answeringFor.delete(s.key);
      });
  }

  /** Dials the downloader at `addr`, offering REVERSED_ALPN, and serves it once it has proved `key`. */
  async #dialBack(s: Signal): Promise<void> {
    const hp = s.addr === undefined ? "no address" : parseHostPort(s.addr);
    if (typeof hp === "string") throw new Error(`bad address: ${hp}`);
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(DIAL_BACK_TIMEOUT_MS)]);
    const limits = this.#d.limits;
    let link: Duplex | undefined;
    const socket = await dialPeer({ ...hp, key: s.key }, await this.#d.identity(), signal, {
      alpn: [REVERSED_ALPN],
      ...(limits && { wrap: (t: Duplex) => (link = limits.link(t)) }),
    });
    if (link) limits!.bind(socket, link);
    this.#d.peerServer.serveDialed(socket, s.key);
  }

  /** Answers the rendezvous from a fresh port, then connects from that port to the downloader as it connects to us. */
  async #punch(s: Signal): Promise<void> {
    if (s.punch === undefined || s.tracker === undefined)
      throw new Error("a punch signal without its rendezvous");
    const { answer, localPort } = await this.#d.tracker.callFresh(
      s.tracker,
      "punchAnswer",
      { punchId: s.punch },
      {},
    );
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(PUNCH_TIMEOUT_MS)]);
    const tcp = await punchConnect(answer.addr, localPort, this.#d.tracker.localAddress, signal);
    this.#d.peerServer.serveStream(tcp, "punched");
  }

  /** Opens our leg of the circuit and serves what comes through it, as the TLS server. */
  async #joinRelay(s: Signal): Promise<void> {
    if (s.relay === undefined || s.circuit === undefined) throw new Error("a relay signal without its relay");
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(RELAY_TIMEOUT_MS)]);
    const leg = await this.#d.tracker.openRelay(s.relay, s.circuit, signal);
    if (!(leg instanceof Socket)) {
      leg.destroy();
      throw new Error("the relay leg is not a socket");
    }
    this.#d.peerServer.serveStream(leg, "relayed");
  }
}
