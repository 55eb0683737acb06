/**
 * What one flash crowd run spent its time on, from the upload counters (both
 * systems) and groupshare's traces (swarmTrace.ts): how well the swarm's upload
 * capacity was used, and when; what the seeder sent before every piece had gone
 * out once; where each downloader waited; how late peers learned of each other.
 */
import { readFile } from "node:fs/promises";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { mbit } from "../../test/lab/lab.js";
import type { CaseCaps, Crowd, UploadSample } from "./swarmCrowd.js";
import type { CrowdRun } from "./swarmGroupshare.js";

type Event = [string, number, ...unknown[]];

/** groupshare's peer-list refresh: until then a downloader knows only the sharers listed at its start. */
const FIVE_MS = 5_000;

async function readTrace(path: string): Promise<Event[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  const out: Event[] = [];
  for (const line of text.split("\n")) if (line) out.push(JSON.parse(line) as Event);
  return out;
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Upload use: bytes each host sent during the run, and the swarm's use of its capacity by phase. */
export interface UploadUse {
  /** MiB uploaded by the seeder and by each downloader (host order) between t0 and the last completion */
  seedMiB: number;
  peerMiB: number[];
  /** bytes uploaded / (sum of upload caps x time), 0..1: from t0 to the last completion */
  overall: number;
  /** the same over the first 5 s (until groupshare's first peer-list refresh), and from then to the last completion */
  firstFive: number;
  afterFive: number;
}

export function uploadUse(
  samples: UploadSample[],
  run: CrowdRun,
  crowd: Crowd,
  n: number,
  caps: CaseCaps,
): UploadUse {
  const hosts = [crowd.seed, ...crowd.peers.slice(0, n)];
  const capBytes = (mbit(caps.seedUp) + n * mbit(caps.peerUp)) / 8;
  // the total uploaded by all hosts at time t, interpolated between samples
  const at = (t: number, host?: string) => {
    const sum = (s: UploadSample) =>
      host ? s.up.get(host)! : hosts.reduce((x, h) => x + (s.up.get(h.name) ?? 0), 0);
    let prev = samples[0]!;
    for (const s of samples) {
      if (s.t >= t) {
        if (s.t === prev.t) return sum(s);
        return sum(prev) + ((sum(s) - sum(prev)) * (t - prev.t)) / (s.t - prev.t);
      }
      prev = s;
    }
    return sum(prev);
  };
  const last = run.t0 + Math.max(...run.seconds) * 1000;
  const use = (a: number, b: number) =>
    b > a ? (at(b) - at(a)) / (capBytes * ((b - a) / 1000)) : Number.NaN;
  const mib = (h: string) => (at(last, h) - at(run.t0, h)) / 2 ** 20;
  return {
    seedMiB: mib(crowd.seed.name),
    peerMiB: crowd.peers.slice(0, n).map((h) => mib(h.name)),
    overall: use(run.t0, last),
    firstFive: use(run.t0, Math.min(last, run.t0 + FIVE_MS)),
    afterFive: use(run.t0 + FIVE_MS, last),
  };
}

export interface SeedSends {
  /** seconds from t0 until every piece had gone out once (NaN: never in the run) */
  allOnceSeconds: number;
  /** F/u_s: the earliest that could be */
  idealSeconds: number;
  /** pieces sent before that moment beyond the first copy of each */
  duplicatesBefore: number;
  /** pieces sent by the seeder in the whole run */
  sent: number;
  /** pieces sent in the first 5 s, and how many of them were distinct */
  firstFiveSent: number;
  firstFiveDistinct: number;
}

export interface PeerWaits {
  /** median over downloaders, seconds after t0: the tracker's first answer, the first piece requested, the first piece in */
  firstGrant: number;
  firstRequest: number;
  firstPiece: number;
  /** median seconds from the last piece's arrival to the complete line (whole-file SHA1, fsync, link, announce) */
  finishing: number;
  /** share of 100 ms samples between the first request and the last piece with nothing in flight (starved) */
  starved: number;
  /** median of the mean requests in flight, and of the mean links with pieces we lack */
  inFlight: number;
  interesting: number;
  /** median distinct peers a downloader had a link with in the run */
  peersLinked: number;
  /** pieces each downloader had in the first 5 s: the fewest, the median, the most */
  firstFivePieces: [number, number, number];
}

export interface Discovery {
  /** pairs (X, Y): seconds from X's first piece (it shares from then) to Y's first link to X; median and max */
  linkLagMedian: number;
  linkLagMax: number;
  /** pairs where Y never linked X before Y completed, of all pairs */
  neverLinked: number;
  /** peer-list answers per downloader in the run (median) */
  grants: number;
}

export interface TraceProfile {
  seed: SeedSends;
  waits: PeerWaits;
  discovery: Discovery;
  /** pieces served by each downloader (from its trace), host order */
  peerPiecesOut: number[];
}

export async function traceProfile(
  run: CrowdRun,
  crowd: Crowd,
  n: number,
  caps: CaseCaps,
  fileBytes: number,
): Promise<TraceProfile | undefined> {
  if (!run.traces) return undefined;
  const pieceCount = Math.ceil(fileBytes / PIECE_SIZE);
  const end = run.t0 + Math.max(...run.seconds) * 1000;
  const inRun = (e: Event) => e[1] >= run.t0 && e[1] <= end + 1000;
  const seedEvents = (await readTrace(run.traces.seed)).filter(inRun);
  const peers = await Promise.all(run.traces.peers.map(readTrace));

  // the seeder: when had every piece gone out once, and what did it send twice before then?
  const outs = seedEvents.filter((e) => e[0] === "out");
  const seen = new Set<number>();
  let allOnce = Number.NaN;
  let before = 0;
  for (const e of outs) {
    seen.add(e[2] as number);
    before++;
    if (seen.size === pieceCount) {
      allOnce = (e[1] - run.t0) / 1000;
      break;
    }
  }
  const seed: SeedSends = {
    allOnceSeconds: allOnce,
    idealSeconds: (fileBytes * 8) / mbit(caps.seedUp),
    duplicatesBefore: Number.isNaN(allOnce) ? before - seen.size : before - pieceCount,
    sent: outs.length,
    firstFiveSent: outs.filter((e) => e[1] < run.t0 + FIVE_MS).length,
    firstFiveDistinct: new Set(outs.filter((e) => e[1] < run.t0 + FIVE_MS).map((e) => e[2])).size,
  };

  const addrOf = (i: number) => `${crowd.peers[i]!.addr}:`;
  const rel = (t: number | undefined) => (t === undefined ? Number.NaN : (t - run.t0) / 1000);
  const first = (ev: Event[], kind: string) => ev.find((e) => e[0] === kind)?.[1];
  const lastOf = (ev: Event[], kind: string) => {
    for (let i = ev.length - 1; i >= 0; i--) if (ev[i]![0] === kind) return ev[i]![1];
    return undefined;
  };
  const starved: number[] = [];
  const inFlight: number[] = [];
  const interesting: number[] = [];
  const linked: number[] = [];
  const finishing: number[] = [];
  for (const [i, ev] of peers.entries()) {
    const r0 = first(ev, "req");
    const lastIn = lastOf(ev, "in");
    const samples = ev.filter(
      (e) => e[0] === "s" && r0 !== undefined && lastIn !== undefined && e[1] >= r0 && e[1] <= lastIn,
    );
    starved.push(samples.filter((e) => e[3] === 0).length / Math.max(1, samples.length));
    inFlight.push(samples.reduce((x, e) => x + (e[3] as number), 0) / Math.max(1, samples.length));
    interesting.push(samples.reduce((x, e) => x + (e[5] as number), 0) / Math.max(1, samples.length));
    linked.push(new Set(ev.filter((e) => e[0] === "add").map((e) => e[2])).size);
    if (lastIn !== undefined) finishing.push(run.seconds[i]! - rel(lastIn));
  }
  const waits: PeerWaits = {
    firstGrant: median(peers.map((ev) => rel(first(ev, "grant")))),
    firstRequest: median(peers.map((ev) => rel(first(ev, "req")))),
    firstPiece: median(peers.map((ev) => rel(first(ev, "in")))),
    finishing: median(finishing),
    starved: median(starved),
    inFlight: median(inFlight),
    interesting: median(interesting),
    peersLinked: median(linked),
    firstFivePieces: (() => {
      const got = peers.map((ev) => ev.filter((e) => e[0] === "in" && e[1] < run.t0 + FIVE_MS).length);
      return [Math.min(...got), median(got), Math.max(...got)];
    })(),
  };

  // discovery: X shares from its first piece on; when did each other Y first link to X?
  const lags: number[] = [];
  let never = 0;
  for (let x = 0; x < n; x++) {
    const shares = first(peers[x]!, "in");
    if (shares === undefined) continue;
    for (let y = 0; y < n; y++) {
      if (y === x) continue;
      const done = run.t0 + run.seconds[y]! * 1000;
      const link = peers[y]!.find((e) => e[0] === "add" && String(e[2]).startsWith(addrOf(x)))?.[1];
      if (link === undefined || link > done) never++;
      else lags.push(Math.max(0, (link - shares) / 1000));
    }
  }
  const discovery: Discovery = {
    linkLagMedian: median(lags),
    linkLagMax: lags.length ? Math.max(...lags) : Number.NaN,
    neverLinked: never / Math.max(1, n * (n - 1)),
    grants: median(peers.map((ev) => ev.filter((e) => e[0] === "grant" && e[1] <= end).length)),
  };
  return {
    seed,
    waits,
    discovery,
    peerPiecesOut: peers.map((ev) => ev.filter((e) => e[0] === "out").length),
  };
}
