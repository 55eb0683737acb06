import { isIP } from "node:net";
import { formatHostPort, type TrackerAddress } from "../shared/trackerInfo.js";
import { DownloadManager } from "./download/manager.js";
import { EngineEmitter } from "./engine/emitter.js";
import { Engine } from "./engine/engine.js";
import { Session } from "./engine/session.js";
import { downloadEvent } from "./engine/views.js";
import { SpeedLimits } from "./limits/limits.js";
import type { Rate } from "./limits/rate.js";
import { loadPeerIdentity, type PeerIdentity } from "./peerIdentity.js";
import { reachingDialer } from "./reach/reachingDialer.js";
import { type Clock, systemClock } from "./peers/clock.js";
import { Reversals } from "./peers/reversals.js";
import { PeerServer } from "./serving/peerServer.js";
import { ShareRegistry } from "./serving/shares.js";
import { prepareStateDir } from "./state.js";
import { KnownTrackers } from "./tracker/knownTrackers.js";
import { TrackerClient } from "./tracker/trackerClient.js";

export interface ClientOptions {
  trackers: TrackerAddress[];
  host: string;
  port: number;
  stateDir: string;
  trackerTimeoutMs?: number;
  /** client-wide speed limits (--max-up, --max-down), bytes a second; none when absent */
  maxUp?: Rate;
  maxDown?: Rate;
  /** one clock for the downloads, the peer server and the dialer (default: the system clock) */
  clock?: Clock;
}

/**
 * One user's client, put together: the tracker client, the shares and the peer
 * server that serves them, the downloads and how they reach sharers, the session,
 * and the engine front ends drive. Wiring only: what each part does is in its file.
 */
export class GroupshareClient {
  readonly tracker: TrackerClient;
  readonly shares = new ShareRegistry();
  readonly peerServer: PeerServer;
  readonly downloads: DownloadManager;
  readonly session: Session;
  readonly events = new EngineEmitter();
  readonly engine: Engine;
  readonly limits: SpeedLimits;
  readonly #opts: ClientOptions;
  #identity: Promise<PeerIdentity> | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: ClientOptions) {
    this.#opts = opts;
    const events = this.events;
    const tracker = new TrackerClient({
      trackers: opts.trackers,
      timeoutMs: opts.trackerTimeoutMs,
      // trackers take our peer address's IP from our connections to them
      localAddress: specificIp(opts.host),
      known: new KnownTrackers(opts.stateDir),
    });
    this.tracker = tracker;
    const clock = opts.clock ?? systemClock;
    const reversals = new Reversals(clock);
    const limits = new SpeedLimits(clock, { up: opts.maxUp, down: opts.maxDown }, () =>
      this.downloads.refill(),
    );
    this.limits = limits;
    this.peerServer = new PeerServer({
      shares: this.shares,
      publicKey: () => this.session.current?.trackerKey,
      warn: (warning) => events.emit({ type: "warning", warning }),
      reversals,
      limits,
      clock,
    });
    this.downloads = new DownloadManager({
      tracker,
      shares: this.shares,
      news: (d, n) => {
        // paused or queued: its links (closing, or one that connects meanwhile) move nothing
        limits.setPaused(d, d.held !== undefined);
        events.emit(downloadEvent(d, n));
      },
      selfAddr: this.peerAddr,
      clock,
      onStateChange: () => void this.session.save(),
      // a completed download becomes a share that survives logout
      onComplete: (share) => {
        limits.forget(share);
        const l = this.session.current;
        if (l) void this.session.remember(l, share);
      },
      dialer: reachingDialer({
        identity: () => this.#peerIdentity(),
        reversals,
        clock,
        help: {
          reverse: async (file, userId) => {
            await tracker.call("reverse", file, { userId });
          },
          relay: (file, userId) => tracker.call("relay", file, { userId }),
          openRelay: (relay, circuit, signal) => tracker.openRelay(relay, circuit, signal),
          punch: async (file, userId) => {
            const { answer, localPort } = await tracker.callFresh(undefined, "punch", file, { userId });
            return { addr: answer.addr, localPort };
          },
          localAddress: tracker.localAddress,
        },
        limits,
      }),
      limitShare: (file) => limits.share(file),
    });
    this.session = new Session({
      tracker,
      shares: this.shares,
      downloads: this.downloads,
      peerServer: this.peerServer,
      events,
      stateDir: opts.stateDir,
      peerAddr: this.peerAddr,
      identity: () => this.#peerIdentity(),
      limits,
    });
    this.engine = new Engine({
      limits,
      tracker,
      shares: this.shares,
      peerServer: this.peerServer,
      downloads: this.downloads,
      session: this.session,
      events,
      stateDir: opts.stateDir,
    });
  }

  get peerAddr(): string {
    return formatHostPort(this.#opts.host, this.#opts.port);
  }

  /** Prepares the state folder (owner-only) and starts the peer server on IP:PORT; a port in use is an error here, at start. */
  async start(): Promise<void> {
    for (const problem of await prepareStateDir(this.#opts.stateDir)) {
      this.events.emit({ type: "warning", warning: { kind: "state-dir-open", problem } });
    }
    await this.peerServer.listen(this.#opts.host, this.#opts.port, await this.#peerIdentity());
  }

  /** This client's key pair, made at first start in the state folder. */
  #peerIdentity(): Promise<PeerIdentity> {
    this.#identity ??= loadPeerIdentity(this.#opts.stateDir);
    return this.#identity;
  }

  /**
   * quit, exit, the end of input, a signal: save the state first (downloads and
   * shares resume at the next login), then go offline at the tracker and stop
   * serving. Safe to call from any number of places at once: it runs once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.session.close();
      await this.peerServer.close();
      this.tracker.close();
    })();
    return this.#closing;
  }
}

/** The host as a local address to connect from, unless it is a wildcard (0.0.0.0, ::). */
function specificIp(host: string): string | undefined {
  return isIP(host) !== 0 && host !== "0.0.0.0" && host !== "::" ? host : undefined;
}
