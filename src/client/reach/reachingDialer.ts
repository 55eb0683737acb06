import type { Duplex } from "node:stream";
import type { PeerIdentity } from "../peerIdentity.js";
import { type Clock, systemClock, type Timer } from "../peers/clock.js";
import { type DialTarget, type Dialer, NoPathError, type PathKind, type Reached } from "../peers/dialer.js";
import { dialPeer, IMPOSTOR } from "../peers/dialPeer.js";
import { RELAYED_FRAGMENT } from "../../shared/tlsPolicy.js";
import type { SpeedLimits } from "../limits/limits.js";
import { punchConnect } from "./punch.js";
import type { Reversals } from "../peers/reversals.js";

/** What reaching a sharer behind a router needs from the tracker. */
export interface PathHelp {
  /** Asks the tracker to have `sharer` dial us back. */
  reverse(file: { groupId: string; name: string }, sharer: string): Promise<void>;
  /** A circuit on a tracker's relay with `sharer`, who is told to join it. */
  relay(file: { groupId: string; name: string }, sharer: string): Promise<{ relay: string; circuit: string }>;
  /** Our leg of a relay circuit, once the sharer's has joined it. */
  openRelay(relay: string, circuit: string, signal: AbortSignal): Promise<Duplex>;
  /**
   * A hole punch with `sharer`: the sharer's address as the tracker saw it, and the
   * local port of the fresh connection we asked on (the one to punch from).
   */
  punch(
    file: { groupId: string; name: string },
    sharer: string,
  ): Promise<{ addr: string; localPort: number }>;
  /** The local IP to punch from, when the client has one. */
  localAddress?: string;
}

/**
 * When each path starts, unless the ones before have all failed sooner. A direct
 * connection to a reachable peer is up in one round trip: on loopback and the lab's
 * links in under 5 ms, so a second is a wide margin even on a long path; a router
 * that drops the SYN makes the direct attempt hang, not fail, so waiting for it to
 * fail would cost its whole timeout. Reversal takes a tracker call, the sharer's
 * wake-up (at once on its tracker, within 1 s from another) and a dial back: in the
 * lab about 50 ms, so it has a second to itself before the punch (two fresh tracker
 * connections, then SYNs that may need a retransmission) and 4 s before the relay.
 * A sharer the tracker marks as behind a router gets the reversal at once.
 */
export const PATH_TIMING = {
  reverseAfterMs: 1_000,
  punchAfterMs: 2_000,
  relayAfterMs: 5_000,
  /** how much sooner each path starts for a sharer behind a router */
  natHeadStartMs: 1_000,
  reverseWaitMs: 5_000,
  /** a direct attempt that has not connected by then has failed (a dropped SYN never answers) */
  directTimeoutMs: 9_000,
  /** a hole punch's connects, once both addresses are known: two SYN retransmissions (1 s, then 2 s) */
  punchMs: 3_500,
};

/** Sharers whose last working path we remember (their next dial starts there too). */
const REMEMBERED = 1_024;

/**
 * The downloads' dialer: the cheapest path that works, tried in order with head
 * starts (direct; then the sharer dials us back and, at the same time, a hole punch
 * through both routers; then a tracker's relay), the first
 * to connect winning and the others stopped. Every path ends in the same TLS 1.3
 * with the keys proved both ways, so a reversed or relayed link is as private and
 * as authenticated as a direct one. A direct attempt that meets an impostor ends the
 * dial (its error has code IMPOSTOR); when no path works, the error says what each met.
 */
export function reachingDialer(o: {
  identity: () => Promise<PeerIdentity>;
  reversals: Reversals;
  help: PathHelp;
  timing?: typeof PATH_TIMING;
  /** the TLS dial every path ends in (tests give their own) */
  dial?: typeof dialPeer;
  /** the speed limits every link runs under (none when absent) */
  limits?: SpeedLimits;
  /** head starts and timeouts are read from it (the system clock unless a test brings one) */
  clock?: Clock;
}): Dialer {
  const timing = o.timing ?? PATH_TIMING;
  const clock = o.clock ?? systemClock;
  const dial = o.dial ?? dialPeer;
  const worked = new Map<string, PathKind>();
  const remember = (key: string, kind: PathKind) => {
    worked.delete(key);
    worked.set(key, kind);
    if (worked.size > REMEMBERED) worked.delete(worked.keys().next().value!);
  };

  return async (target: DialTarget, signal: AbortSignal): Promise<Reached> => {
    const identity = await o.identity();
    const file = target.file;
    const limits = o.limits;
    const wrap = limits && ((t: Duplex) => limits.link(t, file));
    const paths: { kind: PathKind; after: number; run: (s: AbortSignal) => Promise<Duplex> }[] = [
      {
        kind: "direct",
        after: 0,
        run: (s) => dial(target, identity, withTimeout(clock, s, timing.directTimeoutMs), { wrap }),
      },
    ];
    if (file) {
      paths.push(
        {
          kind: "reversed",
          after: timing.reverseAfterMs,
          run: async (s) => {
            const back = o.reversals.expect(target.key, timing.reverseWaitMs, s);
            back.catch(() => {}); // a failed ask settles the dial below; this must not go unhandled
            await o.help.reverse(file, target.userId);
            const tls = await back;
            limits?.placeDownload(tls, file); // accepted by our peer server, unplaced till now
            return tls;
          },
        },
        {
          kind: "punched",
          after: timing.punchAfterMs,
          run: async (s) => {
            const { addr, localPort } = await o.help.punch(file, target.userId);
            const tcp = await punchConnect(
              addr,
              localPort,
              o.help.localAddress,
              withTimeout(clock, s, timing.punchMs),
            );
            return dial(target, identity, s, { transport: tcp, wrap });
          },
        },
        {
          kind: "relayed",
          after: timing.relayAfterMs,
          run: async (s) => {
            const { relay, circuit } = await o.help.relay(file, target.userId);
            const leg = await o.help.openRelay(relay, circuit, s);
            const tls = await dial(target, identity, s, { transport: leg, wrap });
            tls.setMaxSendFragment(RELAYED_FRAGMENT);
            return tls;
          },
        },
      );
      // a sharer behind a router: the direct attempt most likely hangs, so the rest come
      // sooner; what worked last time starts at once
      const last = worked.get(target.key);
      for (const p of paths) {
        if (target.nat && p.after > 0) p.after -= timing.natHeadStartMs;
        if (p.kind === last) p.after = 0;
      }
    }
    return new Promise<Reached>((resolve, reject) => {
      const stop = new AbortController();
      const onAbort = () => stop.abort(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      const failed = new Map<PathKind, string>();
      const timers: Timer[] = [];
      const started = new Set<number>();
      let done = false;
      const finish = (err: Error | undefined, stream?: Duplex, kind?: PathKind) => {
        if (done) {
          stream?.destroy();
          return;
        }
        done = true;
        for (const t of timers) t.cancel();
        signal.removeEventListener("abort", onAbort);
        stop.abort(new Error("another path won"));
        if (err) return reject(err);
        remember(target.key, kind!);
        resolve(Object.assign(stream!, { path: kind! }));
      };
      const start = (i: number) => {
        const p = paths[i]!;
        if (done || started.has(i)) return;
        started.add(i);
        p.run(stop.signal).then(
          (stream) => finish(undefined, stream, p.kind),
          (err: NodeJS.ErrnoException) => {
            if (done) return;
            if (p.kind === "direct" && err.code === IMPOSTOR) return finish(err);
            failed.set(p.kind, err.code ?? err.message);
            if (signal.aborted) return finish(err);
            if (failed.size === paths.length) {
              const why = paths.map((q) => `${q.kind}: ${failed.get(q.kind)}`).join("; ");
              return finish(paths.length === 1 ? err : new NoPathError(target.userId, why));
            }
            // everything started has failed: the next path need not wait for its head start
            if (failed.size === started.size) {
              const next = paths.findIndex((_, j) => !started.has(j));
              if (next >= 0) start(next);
            }
          },
        );
      };
      paths.forEach((p, i) => {
        if (p.after === 0) start(i);
        else timers.push(clock.after(p.after, () => start(i)));
      });
    });
  };
}

/**
 * `signal`, or a timeout of `ms` on `clock` (an error that reads "timed out"), whichever
 * comes first. The timer ends with `signal`, which every dial aborts when it settles.
 */
function withTimeout(clock: Clock, signal: AbortSignal, ms: number): AbortSignal {
  if (signal.aborted) return signal;
  const timedOut = new AbortController();
  const timer = clock.after(ms, () => timedOut.abort(new Error("timed out")));
  signal.addEventListener("abort", () => timer.cancel(), { once: true });
  return AbortSignal.any([signal, timedOut.signal]);
}
