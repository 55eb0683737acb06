/**
 * The swarm part: a flash crowd on capped links in the network lab (test/lab/),
 * groupshare beside an aria2c BitTorrent swarm on the same hosts, caps and file,
 * against the fluid model's bound. Needs root (the lab).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import { notRoot } from "../../test/lab/lab.js";
import type { Context } from "../context.js";
import { mdTable, median, type Part } from "../report.js";
import { ensureTools } from "../tools.js";
import { BtCrowd } from "./swarmAria2.js";
import { type CaseCaps, Crowd, fluidBound, type UploadSample, UploadSampler } from "./swarmCrowd.js";
import { type CrowdRun, GsCrowd } from "./swarmGroupshare.js";
import { type TraceProfile, traceProfile, type UploadUse, uploadUse } from "./swarmProfile.js";

/** The cases' keys, for --swarm-cases. */
export const SWARM_CASE_KEYS = ["small", "large", "asymmetric", "departure"] as const;

export interface SwarmCase {
  key: (typeof SWARM_CASE_KEYS)[number];
  label: string;
  n: number;
  caps: CaseCaps;
  /** each downloader leaves as soon as its download completes */
  depart: boolean;
}

/** The cases: the flash crowd for two group sizes, slow uploads, and peers that leave when done. */
export function swarmCases(quick: boolean): SwarmCase[] {
  const [small, large] = quick ? [4, 6] : [8, 16];
  const fast = { seedUp: 80, peerUp: 40 };
  return [
    { key: "small", label: `flash crowd, N = ${small}`, n: small, caps: fast, depart: false },
    { key: "large", label: `flash crowd, N = ${large}`, n: large, caps: fast, depart: false },
    {
      key: "asymmetric",
      label: `asymmetric (10 Mbit/s up), N = ${small}`,
      n: small,
      caps: { seedUp: 80, peerUp: 10 },
      depart: false,
    },
    {
      key: "departure",
      label: `departure (leave when complete), N = ${small}`,
      n: small,
      caps: fast,
      depart: true,
    },
  ];
}

interface Measured {
  run: CrowdRun;
  use: UploadUse;
  profile?: TraceProfile | undefined;
}

interface CaseResult {
  c: SwarmCase;
  bound: number;
  gs: Measured[];
  bt: Measured[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const last = (r: CrowdRun) => Math.max(...r.seconds);
const avg = (r: CrowdRun) => mean(r.seconds);
const cpu = (r: CrowdRun) => r.seedCpuSeconds + r.cpuSeconds.reduce((a, b) => a + b, 0);
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : "n/a");
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");

export async function swarmPart(ctx: Context, fileMiB: number): Promise<Part> {
  const why = notRoot();
  if (why) throw new Error(`the swarm part runs in the network lab: ${why}`);
  await ensureTools(["aria2c", "mktorrent", "opentracker", "ip", "tc", "iptables"], (l) => ctx.say(l));
  const only = ctx.opts.swarmCases;
  const cases = swarmCases(ctx.opts.quick).filter((c) => !only || only.includes(c.key));
  const file = await ctx.file(fileMiB);
  const dir = join(ctx.cluster.dir, "swarm");
  // kept beside the CPU profiles when asked for (--cpu-prof DIR), else removed with the run's files
  const traceDir = ctx.opts.cpuProfDir ? join(ctx.opts.cpuProfDir, "swarm") : join(dir, "traces");
  await mkdir(traceDir, { recursive: true });
  const crowd = await Crowd.create(Math.max(...cases.map((c) => c.n)));
  const results: CaseResult[] = [];
  try {
    ctx.say(`swarm: lab ${crowd.lab.prefix}, ${crowd.peers.length} downloader hosts; traces in ${traceDir}`);
    // V8 profiles only when asked for: the profiler's own CPU would slow a loaded box's runs
    const gs = await GsCrowd.start(crowd, join(dir, "gs"), file, traceDir, ctx.opts.cpuProfDir !== undefined);
    const bt = await BtCrowd.start(crowd, join(dir, "bt"), file);
    for (const c of cases) {
      await crowd.setCaps(c.caps);
      const bound = fluidBound(file.bytes, c.n, c.caps);
      const timeoutMs = 60_000 + Math.ceil(bound * 20_000);
      const res: CaseResult = { c, bound, gs: [], bt: [] };
      for (let r = 0; r < ctx.opts.runs; r++) {
        // the systems alternate which goes first, run by run
        const order = r % 2 === 0 ? (["gs", "bt"] as const) : (["bt", "gs"] as const);
        for (const sys of order) {
          await ctx.settle();
          const sampler = new UploadSampler(crowd);
          await sampler.start();
          let run: CrowdRun;
          let samples: UploadSample[];
          try {
            run =
              sys === "gs" ? await gs.run(c.n, c.depart, timeoutMs) : await bt.run(c.n, c.depart, timeoutMs);
          } finally {
            samples = await sampler.stop();
          }
          const use = uploadUse(samples, run, crowd, c.n, c.caps);
          const profile = sys === "gs" ? await traceProfile(run, crowd, c.n, c.caps, file.bytes) : undefined;
          res[sys].push({ run, use, profile });
          ctx.say(
            `${c.label}, ${sys === "gs" ? "groupshare" : "aria2c"}: last ${f2(last(run))} s, mean ${f2(avg(run))} s ` +
              `(bound ${f2(bound)} s); upload use ${pct(use.overall)}`,
          );
        }
      }
      results.push(res);
    }
    await gs.stop().catch(() => {});
    await bt.stop().catch(() => {});
  } finally {
    await crowd.close();
  }
  return { key: "swarm", text: report(results, fileMiB, ctx.opts.runs) };
}

function report(results: CaseResult[], fileMiB: number, runs: number): string {
  const cores = availableParallelism();
  const rows = results.map(({ c, bound, gs, bt }) => {
    const gLast = median(gs.map((m) => last(m.run)));
    const gMean = median(gs.map((m) => avg(m.run)));
    const bLast = median(bt.map((m) => last(m.run)));
    const bMean = median(bt.map((m) => avg(m.run)));
    return [
      c.label,
      f2(bound),
      `${gs.map((m) => f1(last(m.run))).join(", ")}`,
      `**${pct(bound / gLast)}**`,
      `${f2(gMean)} (${pct(bound / gMean)})`,
      `${bt.map((m) => f1(last(m.run))).join(", ")}`,
      pct(bound / bLast),
      `${f2(bMean)} (${pct(bound / bMean)})`,
      `**${f2(bLast / gLast)}×**`,
      `${f2(bMean / gMean)}×`,
      `${f1(median(gs.map((m) => cpu(m.run))))} / ${f1(median(bt.map((m) => cpu(m.run))))}`,
    ];
  });
  const table = mdTable(
    [
      "case",
      "bound (s)>",
      "groupshare last (s)>",
      "bound / last>",
      "mean (s), bound / mean>",
      "aria2c last (s)>",
      "bound / last>",
      "mean (s), bound / mean>",
      "speed vs aria2c, last>",
      "mean>",
      "CPU gs / aria2c (s)>",
    ],
    rows,
  );
  const useRows = results.flatMap(({ c, gs, bt }) =>
    (
      [
        ["groupshare", gs],
        ["aria2c", bt],
      ] as const
    ).map(([name, ms]) => {
      const u = (f: (x: UploadUse) => number) => pct(median(ms.map((m) => f(m.use))));
      const peers = ms.flatMap((m) => m.use.peerMiB);
      return [
        `${c.label}: ${name}`,
        u((x) => x.overall),
        u((x) => x.firstFive),
        u((x) => x.afterFive),
        f1(median(ms.map((m) => m.use.seedMiB))),
        `${f1(Math.min(...peers))} / ${f1(median(peers))} / ${f1(Math.max(...peers))}`,
        `${f1(median(ms.map((m) => m.run.runCpu.user)))} / ${f1(median(ms.map((m) => m.run.runCpu.system)))}`,
        pct(median(ms.map((m) => (m.run.runCpu.user + m.run.runCpu.system) / (cores * last(m.run))))),
      ];
    }),
  );
  const useTable = mdTable(
    [
      "case: system",
      "upload use, whole run>",
      "first 5 s>",
      "5 s to last completion>",
      "seeder sent (MiB)>",
      "each downloader sent, min / median / max (MiB)>",
      "CPU in the run, user / system (s)>",
      `of ${cores} cores × last>`,
    ],
    useRows,
  );
  const profRows = results.flatMap(({ c, gs }) => {
    const ps = gs.map((m) => m.profile).filter((p): p is TraceProfile => p !== undefined);
    if (ps.length === 0) return [];
    const m = (f: (p: TraceProfile) => number) => median(ps.map(f));
    return [
      [
        c.label,
        `${f1(m((p) => p.seed.allOnceSeconds))} (${f1(ps[0]!.seed.idealSeconds)})`,
        f1(m((p) => p.seed.duplicatesBefore)),
        `${f1(m((p) => p.seed.firstFiveSent))} / ${f1(m((p) => p.seed.firstFiveDistinct))}`,
        ps[0]!.waits.firstFivePieces.map((x) => f1(x)).join(" / "),
        `${f2(m((p) => p.waits.firstGrant))} / ${f2(m((p) => p.waits.firstRequest))} / ${f2(m((p) => p.waits.firstPiece))}`,
        pct(m((p) => p.waits.starved)),
        `${f1(m((p) => p.waits.inFlight))} / ${f1(m((p) => p.waits.interesting))} / ${f1(m((p) => p.waits.peersLinked))}`,
        `${f1(m((p) => p.discovery.linkLagMedian))} / ${f1(m((p) => p.discovery.linkLagMax))}`,
        pct(m((p) => p.discovery.neverLinked)),
        f2(m((p) => p.waits.finishing)),
      ],
    ];
  });
  const profTable = mdTable(
    [
      "case",
      "seeder: every piece out once at (s) (F/u_s)>",
      "seeder: pieces sent twice before that>",
      "seeder: pieces sent / distinct in the first 5 s>",
      "pieces per downloader at 5 s, min / median / max (first run)>",
      "first peer list / request / piece (s)>",
      "time starved>",
      "in flight / links with pieces we lack / peers linked>",
      "partial sharer linked after (s), median / max>",
      "pairs never linked>",
      "last piece to complete line (s)>",
    ],
    profRows,
  );
  return `### Swarm: flash crowd on capped links, ${fileMiB} MiB

${table}

Upload use (bytes all hosts sent / (sum of their caps × time), from the counters at the lab switch's ports; TCP/IP and Ethernet headers count, so about 96% of it can be file data). CPU in the run: what the seeder (to the last completion) and each downloader (to its own) spent after the download commands went out, in user space and in the kernel, and that as a share of the box's cores over the last completion. aria2c's includes its start, groupshare's not its start and login. The kernel's part is mostly the lab's packets: the caps cut every send into 1,448-byte segments, each crossing a veth, the bridge and a tbf, charged to the process that sends or receives it. Near 100% the CPU, not the caps, sets the pace (the tracker and the lab's own softirqs come on top):

${useTable}

groupshare's profile (from each client's trace, medians over downloaders and runs):

${profTable}

Each case: ${runs} run(s) per system, alternating which goes first; last and mean completion of the N downloaders, each as the fluid bound over the time (100% = the bound); "speed vs aria2c" is aria2c's time over groupshare's (above 1: groupshare faster). The bound is max(F/u_s, N·F/(u_s + Σu_i)) (Kumar and Ross, 2006); with departures the bound stays the same, since the optimal schedule completes every peer at once. The lab (test/lab/): every host its own network namespace on one bridge, tbf upload caps (seeder 80 Mbit/s, downloaders 40 or 10), downloads uncapped, no added latency. groupshare: ./tracker on an uncapped host, a seeding ./client that stays, and per run a fresh ./client per downloader host (logged in first), all sent download_file at once, each timed to its \`download complete\` line (every piece's and the whole file's SHA1 checked); with departure, each exits at that line. aria2c 1.36: opentracker, \`mktorrent -l 19\`, an aria2c seeder, and per run an aria2c per host started at once (so its time includes its start and first announce), \`--file-allocation=none\`, DHT, LPD and peer exchange off, timed to its \`--on-bt-download-complete\` hook (every piece's SHA1 checked); \`--seed-ratio=0.0\` (seeds on), or with departure \`--seed-time=0\`. CPU: user + system of the seeder during the run and of every downloader to its completion. The box is shared: wall times vary between runs; the caps, not the CPU, set the pace, unless the CPU column nears the run's length × 2 cores.`;
}
