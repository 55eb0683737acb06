/**
 * Speed limits on real traffic, in the network lab: every host uncapped, so the
 * client's limit is the only cap. Bytes through the limited client's link are read
 * at the lab's switch (or router LAN) every 100 ms, and its rate is taken over every
 * 1 s and 10 s window:
 *   down      a downloader with --max-down, three public sharers
 *   change    the same download, set_limit down to a lower rate mid-way: seconds
 *             until every 1 s window is within 5% of the new limit
 *   up        one sharer with --max-up serving three downloaders
 *   relayed   a downloader with --max-down and a sharer, each behind a router with
 *             random ports, so punching fails and the tracker relays
 *   loopback  tracker, sharer and downloader on one namespace's loopback, read off
 *             its lo counters
 * and whether a limit leaves the other direction alone, each beside a reference run
 * without it: a sharer serving at full speed while its --max-down is in use by a
 * download of its own, and a downloader downloading at full speed while its --max-up
 * is in use serving another member.
 * A client without --max-down (the limits not wired in yet) runs every case with
 * no limit: a check of the plumbing, not a figure. Needs root (the lab).
 */
import { execFile } from "node:child_process";
import { link, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { type Proc, ROOT } from "../../test/helpers/procs.js";
import { type ClientOptions, startClient, startTracker } from "../../test/lab/groupshare.js";
import { type Host, Lab, notRoot, type Router } from "../../test/lab/lab.js";
import type { Context } from "../context.js";
import { makeRandomFile } from "../files.js";
import { mdTable, type Part, verdict } from "../report.js";
import { cpuSplit } from "../tools.js";

const COMMAND_MS = 30_000;
const SAMPLE_MS = 100;
/** The download limit of the down, relayed and loopback cases, and the change's starting point. */
const DOWN = 4e6;
/** What set_limit lowers the download limit to. */
const LOWER = 2e6;
/** The sharer's upload limit in the up case. */
const UP = 2e6;
/** A 100 ms sample with this much has the transfer going: the span measured starts there. */
const MOVING_BYTES = 64 * 1024;
/** The bounds a limit must hold: each 10 s window within 5% of the limit, no 1 s window above 1.25 times it. */
const TEN_S_TOLERANCE = 0.05;
const ONE_S_MAX = 1.25;
const FILE = "lim.bin";

export interface Sample {
  /** performance.now(), ms */
  t: number;
  /** bytes through the link so far */
  bytes: number;
}

interface Measured {
  name: string;
  /** what was limited, as the client was told */
  limit: string;
  /** bytes per second, undefined when the client ran without one */
  rate: number | undefined;
  where: string;
  samples: Sample[];
  /** CPU seconds (user + system) of the limited client over the samples */
  cpu: number;
  /** the change case: seconds from set_limit to the first 1 s window within 5%, and until all are */
  settle?: { first: number; held: number };
}

/** A transfer at full speed, with or without a limit on the client's other direction in use. */
interface Unhindered {
  name: string;
  /** the limit in use meanwhile, or undefined for the reference */
  limit: string | undefined;
  where: string;
  samples: Sample[];
  cpu: number;
}

/**
 * Rates (bytes/s) over every window of `seconds` that starts at a sample, each
 * ending at the first sample at least that far on (less half a sample's jitter).
 */
export function windowRates(s: readonly Sample[], seconds: number): { start: number; rate: number }[] {
  const out: { start: number; rate: number }[] = [];
  const span = seconds * 1000 - SAMPLE_MS / 2;
  let j = 0;
  for (let i = 0; i < s.length; i++) {
    j = Math.max(j, i + 1);
    while (j < s.length && s[j]!.t - s[i]!.t < span) j++;
    if (j >= s.length) break;
    out.push({ start: s[i]!.t, rate: (s[j]!.bytes - s[i]!.bytes) / ((s[j]!.t - s[i]!.t) / 1000) });
  }
  return out;
}

/**
 * After a change at `at` to `rate`: seconds from `at` to the start of the first 1 s
 * window within `tolerance` of `rate` (the change took effect), and to the start of
 * the first after which every window is (it held); NaN for never.
 */
export function settleSeconds(
  s: readonly Sample[],
  at: number,
  rate: number,
  tolerance = 0.05,
): { first: number; held: number } {
  const w = windowRates(
    s.filter((x) => x.t >= at),
    1,
  );
  const within = (x: { rate: number }) => Math.abs(x.rate / rate - 1) <= tolerance;
  let lastOut = -1;
  for (const [i, x] of w.entries()) if (!within(x)) lastOut = i;
  const since = (x: { start: number } | undefined) => (x ? (x.start - at) / 1000 : Number.NaN);
  return { first: since(w.find(within)), held: since(w[lastOut + 1]) };
}

/**
 * Samples `read` every SAMPLE_MS until `ms` after the transfer started moving (or
 * from the first sample, with `moving`), or until `done`; at most `boundMs` in all.
 */
async function sampleFor(
  read: () => Promise<number>,
  ms: number,
  done: () => boolean,
  boundMs: number,
  moving = false,
): Promise<Sample[]> {
  const out: Sample[] = [];
  const t0 = performance.now();
  let from = moving ? t0 : Number.NaN;
  for (let k = 0; k * SAMPLE_MS <= boundMs; k++) {
    const wait = t0 + k * SAMPLE_MS - performance.now();
    if (wait > 0) await sleep(wait);
    const before = performance.now();
    const bytes = await read();
    // the read's midpoint: a late read skews neither window it bounds
    const s = { t: (before + performance.now()) / 2, bytes };
    const prev = out.at(-1);
    out.push(s);
    if (Number.isNaN(from) && prev && s.bytes - prev.bytes >= MOVING_BYTES) from = prev.t;
    if (s.t - from >= ms || done()) break;
  }
  if (Number.isNaN(from)) throw new Error(`nothing moved within ${boundMs} ms`);
  return out.filter((x) => x.t >= from);
}

const cpuOf = async (p: Proc) => {
  const s = await cpuSplit(p.child.pid!);
  return s.user + s.system;
};

const finished = (p: Proc) => () => p.lines.some((l) => /^download (complete|failed)/.test(l));

/** Whether this build's client takes --max-down (the limits are wired in). */
async function hasLimits(): Promise<boolean> {
  const run = promisify(execFile);
  const { stdout, stderr } = await run(join(ROOT, "client"), ["--help"], { timeout: COMMAND_MS }).catch(
    (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
  );
  return `${stdout}${stderr}`.includes("--max-down");
}

/** Bytes sent (lo counts each packet once each way) on the loopback of `pid`'s namespace. */
async function loBytes(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/net/dev`, "utf8");
  const line = text.split("\n").find((l) => l.trim().startsWith("lo:"));
  if (!line) throw new Error("no lo in /proc/net/dev");
  return Number(line.split(":")[1]!.trim().split(/\s+/)[8]);
}

export async function limitsPart(ctx: Context, mib: number, seconds: number): Promise<Part> {
  const title = "### Speed limits on real traffic (lab)";
  const why = notRoot();
  if (why) return { key: "limits", text: `${title}\n\nNot run: ${why}.\n` };
  const limited = await hasLimits();
  if (!limited)
    ctx.say("limits: this client has no --max-down: every case runs unlimited (a plumbing check)");
  const dir = join(ctx.cluster.dir, "limits");
  await mkdir(dir, { recursive: true });
  const file = join(dir, FILE);
  await makeRandomFile(file, mib * 2 ** 20);
  const lab = await Lab.create();
  const results: Measured[] = [];
  const full: Unhindered[] = [];
  const bound = (seconds + 60) * 1000;
  try {
    const { infoPath } = await startTracker(await lab.host("tracker"), dir);
    let n = 0;
    /** A logged-in client on a host of its own (behind `router` if given) or on `host`. */
    const client = async (
      at: { router?: Router; host?: Host; info?: string; addr?: string },
      args: string[] = [],
    ): Promise<{ p: Proc; host: Host }> => {
      const name = `u${++n}`;
      const host = at.host ?? (await lab.host(`h${n}`, at.router ? { behind: at.router } : {}));
      const opts: ClientOptions = { args: limited ? args : [], ...(at.addr && { addr: at.addr }) };
      const p = startClient(host, name, at.info ?? infoPath, dir, opts);
      await p.run(`create_user ${name} pw`, /created/, COMMAND_MS);
      await p.run(`login ${name} pw`, /^logged in as/, COMMAND_MS);
      return { p, host };
    };
    /** `owner` makes group `g`; each of `members` joins it and is accepted. */
    const group = async (g: string, owner: Proc, members: Proc[]) => {
      await owner.run(`create_group ${g}`, /^group \S+ created/, COMMAND_MS);
      for (const m of members) {
        await m.run(`join_group ${g}`, /^asked to join/, COMMAND_MS);
        await owner.run(`accept_request ${g} ${m.label}`, /is now a member/, COMMAND_MS);
      }
    };
    /** Each sharer shares its own hard link of the file in `g`, all at once. */
    const share = async (g: string, sharers: Proc[]) => {
      await Promise.all(
        sharers.map(async (s) => {
          const own = join(dir, `share-${s.label}`);
          await mkdir(own, { recursive: true });
          await link(file, join(own, FILE));
          await s.run(`upload_file ${join(own, FILE)} ${g}`, /^uploaded /, COMMAND_MS);
        }),
      );
    };
    const download = async (g: string, p: Proc) => {
      const out = join(dir, `out-${p.label}`);
      await mkdir(out, { recursive: true });
      await p.run(`download_file ${g} ${FILE} ${out}`, /^downloading /, COMMAND_MS);
    };
    /** The download's peers as show_downloads gives them (`2 peers (1 direct, 1 relayed)`). */
    const peersOf = async (p: Proc) => {
      const line = await p.run("show_downloads", /^\[[CD]\]/, COMMAND_MS);
      return /\d+ peers? \([^)]*\)/.exec(line)?.[0] ?? line;
    };
    const stopAll = async (ps: Proc[]) => await Promise.all(ps.map((p) => p.kill()));
    /**
     * Group `g` of sharer `s` and downloader `d` (with --max-down 4MB/s): `d`'s
     * download measured by `read` (on the link `where` names, given the download's peers), then both stopped.
     */
    const oneSharer = async (
      g: string,
      s: Proc,
      d: Proc,
      name: string,
      read: () => Promise<number>,
      where: (peers: string) => string,
    ) => {
      await group(g, s, [d]);
      await share(g, [s]);
      const cpu0 = await cpuOf(d);
      await download(g, d);
      const samples = await sampleFor(read, seconds * 1000, finished(d), bound);
      const cpu = (await cpuOf(d)) - cpu0;
      const rate = limited ? DOWN : undefined;
      results.push({ name, limit: "down 4 MB/s", rate, where: where(await peersOf(d)), samples, cpu });
      await stopAll([s, d]);
    };

    {
      ctx.say("limits: down and change (3 public sharers)");
      const sharers = [await client({}), await client({}), await client({})];
      const d = await client({}, ["--max-down", "4MB/s"]);
      await group(
        "la",
        sharers[0]!.p,
        [...sharers.slice(1), d].map((c) => c.p),
      );
      await share(
        "la",
        sharers.map((c) => c.p),
      );
      const read = async () => (await d.host.counters()).down;
      const cpu0 = await cpuOf(d.p);
      await download("la", d.p);
      const first = await sampleFor(read, seconds * 1000, finished(d.p), bound);
      const cpu1 = await cpuOf(d.p);
      const at = performance.now();
      if (limited) d.p.send("set_limit down 2MB/s");
      const second = await sampleFor(read, (seconds / 2) * 1000, finished(d.p), bound, true);
      const cpu2 = await cpuOf(d.p);
      if (limited) {
        const answer = await d.p.expect(/^(download limit|error)/, COMMAND_MS);
        if (answer.startsWith("error")) throw new Error(`set_limit: ${answer}`);
      }
      const where = `downloader's link: ${await peersOf(d.p)}`;
      results.push({
        name: "down: --max-down 4MB/s, 3 sharers",
        limit: "down 4 MB/s",
        rate: limited ? DOWN : undefined,
        where,
        samples: first,
        cpu: cpu1 - cpu0,
      });
      results.push({
        name: "change: set_limit down 2MB/s mid-download",
        limit: "down 2 MB/s",
        rate: limited ? LOWER : undefined,
        where,
        samples: second,
        cpu: cpu2 - cpu1,
        settle: limited ? settleSeconds(second, at, LOWER) : { first: Number.NaN, held: Number.NaN },
      });
      await stopAll([d.p, ...sharers.map((c) => c.p)]);
    }

    {
      ctx.say("limits: up (one sharer, 3 downloaders)");
      const s = await client({}, ["--max-up", "2MB/s"]);
      const ds = [await client({}), await client({}), await client({})];
      await group(
        "lb",
        s.p,
        ds.map((c) => c.p),
      );
      await share("lb", [s.p]);
      const read = async () => (await s.host.counters()).up;
      const cpu0 = await cpuOf(s.p);
      await Promise.all(ds.map((c) => download("lb", c.p)));
      const samples = await sampleFor(read, seconds * 1000, finished(ds[0]!.p), bound);
      results.push({
        name: "up: --max-up 2MB/s, 3 downloaders",
        limit: "up 2 MB/s",
        rate: limited ? UP : undefined,
        where: "sharer's link",
        samples,
        cpu: (await cpuOf(s.p)) - cpu0,
      });
      await stopAll([s.p, ...ds.map((c) => c.p)]);
    }

    {
      ctx.say("limits: relayed (each behind a router with random ports)");
      const randa = await lab.router("randa", { randomFully: true });
      const randb = await lab.router("randb", { randomFully: true });
      const s = await client({ router: randb });
      const d = await client({ router: randa }, ["--max-down", "4MB/s"]);
      await oneSharer(
        "lc",
        s.p,
        d.p,
        "relayed: --max-down 4MB/s, 1 sharer",
        async () => (await d.host.counters()).down,
        (peers) => `downloader's link (router LAN port): ${peers}`,
      );
    }

    {
      ctx.say("limits: loopback (one namespace's lo)");
      const loop = await lab.host("loop");
      const loopDir = join(dir, "loop");
      await mkdir(loopDir);
      const { infoPath: info } = await startTracker(loop, loopDir, { addr: "127.0.0.1" });
      const s = await client({ host: loop, info, addr: "127.0.0.2" });
      const d = await client({ host: loop, info, addr: "127.0.0.3" }, ["--max-down", "4MB/s"]);
      await oneSharer(
        "ld",
        s.p,
        d.p,
        "loopback: --max-down 4MB/s, 1 sharer",
        () => loBytes(d.p.child.pid!),
        (peers) => `the namespace's lo (every packet in it): ${peers}`,
      );
    }

    {
      ctx.say("limits: a limit leaves the other direction at full speed (beside a reference without it)");
      /** One transfer from `s` to `d` measured at `measured`'s link in `direction`, with `busy` started first. */
      const fullSpeed = async (
        name: string,
        limit: string | undefined,
        pair: { s: Proc; d: Proc; measured: { p: Proc; host: Host }; direction: "up" | "down" },
        busy: () => Promise<void>,
      ) => {
        const g = `lf${full.length}`;
        await group(g, pair.s, [pair.d]);
        await share(g, [pair.s]);
        await busy();
        const read = async () => (await pair.measured.host.counters())[pair.direction];
        const cpu0 = await cpuOf(pair.measured.p);
        await download(g, pair.d);
        const samples = await sampleFor(read, bound, finished(pair.d), bound);
        const cpu = (await cpuOf(pair.measured.p)) - cpu0;
        const where = `${pair.direction === "up" ? "sharer" : "downloader"}'s link`;
        full.push({ name, limit, where, samples, cpu });
      };
      const cases = [
        { name: "serving", direction: "up", limit: ["--max-down", "4MB/s"], meanwhile: "downloading" },
        { name: "downloading", direction: "down", limit: ["--max-up", "2MB/s"], meanwhile: "serving" },
      ] as const;
      for (const c of cases) {
        for (const capped of [false, true]) {
          const serving = c.direction === "up";
          const s = await client({}, capped && serving ? [...c.limit] : []);
          const d = await client({}, capped && !serving ? [...c.limit] : []);
          const measured = serving ? s : d;
          const other = await client({});
          await fullSpeed(
            c.name,
            capped ? `${c.limit.join(" ")}, ${c.meanwhile} meanwhile` : undefined,
            { s: s.p, d: d.p, measured, direction: c.direction },
            async () => {
              if (!capped) return;
              // the measured client's limited direction is in use at its limit meanwhile
              const [from, to] = serving ? [other.p, measured.p] : [measured.p, other.p];
              const g = `lf${full.length}x`;
              await group(g, from, [to]);
              await share(g, [from]);
              await download(g, to);
            },
          );
          await stopAll([s.p, d.p, other.p]);
        }
      }
    }
  } finally {
    await lab.close();
  }
  const text = `${report(title, results, limited, mib, seconds)}\n${fullReport(full, mib)}`;
  return { key: "limits", text };
}

function report(title: string, results: Measured[], limited: boolean, mib: number, seconds: number): string {
  const ratio = (x: number) => x.toFixed(3);
  const rows = results.map((r) => {
    const s = r.samples;
    if (s.length < 2)
      return [r.name, r.limit, r.where, "– (over before a sample)", "–", "–", "–", "–", "–", "–"];
    const span = (s.at(-1)!.t - s[0]!.t) / 1000;
    const bytes = s.at(-1)!.bytes - s[0]!.bytes;
    const mean = bytes / span;
    const ten = windowRates(s, 10).map((w) => w.rate);
    const one = windowRates(s, 1).map((w) => w.rate);
    const maxOne = Math.max(...one);
    const cells = [r.name, r.limit, r.where, `${span.toFixed(1)} s`, (mean / 1e6).toFixed(2)];
    if (r.rate === undefined) {
      return [
        ...cells,
        ten.length
          ? `${(Math.min(...ten) / 1e6).toFixed(2)}–${(Math.max(...ten) / 1e6).toFixed(2)} MB/s`
          : "–",
        `${(maxOne / 1e6).toFixed(2)} MB/s`,
        "–",
        `${r.cpu.toFixed(2)} (${(r.cpu / (bytes / 1e9)).toFixed(1)})`,
        "–",
      ];
    }
    const lo = Math.min(...ten) / r.rate;
    const hi = Math.max(...ten) / r.rate;
    const one1 = maxOne / r.rate;
    const ok = ten.length > 0 && lo >= 1 - TEN_S_TOLERANCE && hi <= 1 + TEN_S_TOLERANCE && one1 <= ONE_S_MAX;
    const sec = (x: number) => (Number.isNaN(x) ? "never" : `${x.toFixed(1)} s`);
    const settle = r.settle === undefined ? "–" : `${sec(r.settle.first)}; ${sec(r.settle.held)}`;
    return [
      ...cells,
      ten.length ? `${ratio(lo)}–${ratio(hi)}` : "– (under 10 s)",
      ratio(one1),
      settle,
      `${r.cpu.toFixed(2)} (${(r.cpu / (bytes / 1e9)).toFixed(1)})`,
      verdict(ok && (r.settle === undefined || r.settle.first <= 1)),
    ];
  });
  const head = limited
    ? ["case", "limit", "measured on", "span>", "mean MB/s>", "10 s windows ÷ limit>", "worst 1 s ÷ limit>"]
    : ["case", "limit (not applied)", "measured on", "span>", "mean MB/s>", "10 s windows>", "worst 1 s>"];
  return [
    title,
    "",
    limited
      ? ""
      : "**No limit applied**: this client has no `--max-down` yet, so every case ran unlimited " +
        "(a check of the harness; the figures are the lab's uncapped speed, not a limit's accuracy).\n",
    `A ${mib} MiB file; every host uncapped (no tbf), so the client's limit is the only cap. ` +
      "Every client is a real ./client on a lab host of its own (loopback: tracker and both clients " +
      "on one namespace's 127.0.0.0/8), the tracker a real ./tracker. The limited client's link is read " +
      `every ${SAMPLE_MS} ms at its far end (the switch, or its router's LAN): bytes on the wire, so ` +
      "TCP/IP headers and TLS are counted, and for a downloader also the few bytes from the tracker. " +
      `The span starts at the first ${SAMPLE_MS} ms with ${MOVING_BYTES / 1024} KiB or more and runs ` +
      `${seconds} s (the change: ${seconds / 2} s after set_limit). Windows slide by ${SAMPLE_MS} ms. ` +
      `Bounds: every 10 s window within ${TEN_S_TOLERANCE * 100}% of the limit, no 1 s window above ` +
      `${ONE_S_MAX}×, a change in effect within 1 s. Settle: from set_limit to the start of the first 1 s ` +
      "window within 5% of the new limit (first), and of the first after which all are (held). CPU: user + system seconds of the limited " +
      "client over the span (per GB moved).",
    "",
    mdTable([...head, "settle: first; held>", "CPU s (per GB)>", "bounds"], rows),
    "",
    "Each case's MB/s in consecutive 1 s windows from its span's start:",
    "",
    "```",
    ...results.map((r) => `${r.name.split(":")[0]!.padEnd(9)} ${perSecond(r.samples)}`),
    "```",
    "",
  ].join("\n");
}

/** The full-speed cases: each beside its reference, as a ratio of mean rates. */
function fullReport(full: readonly Unhindered[], mib: number): string {
  const mean = (s: readonly Sample[]) =>
    s.length < 2 ? Number.NaN : (s.at(-1)!.bytes - s[0]!.bytes) / ((s.at(-1)!.t - s[0]!.t) / 1000);
  const rows = full.map((u) => {
    const ref = full.find((r) => r.name === u.name && r.limit === undefined);
    const m = mean(u.samples);
    const bytes = u.samples.length < 2 ? 0 : u.samples.at(-1)!.bytes - u.samples[0]!.bytes;
    return [
      u.name,
      u.limit ?? "none (the reference)",
      u.where,
      `${((u.samples.at(-1)?.t ?? 0) / 1000 - (u.samples[0]?.t ?? 0) / 1000).toFixed(1)} s`,
      (m / 1e6).toFixed(1),
      ref && ref !== u ? (m / mean(ref.samples)).toFixed(2) : "1",
      `${u.cpu.toFixed(2)} (${(u.cpu / (bytes / 1e9)).toFixed(1)})`,
    ];
  });
  return [
    "A limit in one direction, in use, leaves the other at full speed: the same " +
      `${mib} MiB transfer on uncapped lab hosts, first without any limit (the reference), then ` +
      "with the measured client's other direction limited and busy at its limit (a download of " +
      "its own at 4 MB/s while it serves; serving another member at 2 MB/s while it downloads). " +
      "Mean rate over the whole transfer at the measured client's link; CPU as above.",
    "",
    mdTable(
      [
        "transfer",
        "the other direction's limit",
        "measured on",
        "span>",
        "mean MB/s>",
        "÷ reference>",
        "CPU s (per GB)>",
      ],
      rows,
    ),
    "",
  ].join("\n");
}

/** MB/s over consecutive 1 s windows, as text. */
function perSecond(s: readonly Sample[]): string {
  const out: string[] = [];
  let i = 0;
  for (let j = 1; j < s.length; j++) {
    if (s[j]!.t - s[i]!.t < 1000 - SAMPLE_MS / 2) continue;
    out.push(((s[j]!.bytes - s[i]!.bytes) / (s[j]!.t - s[i]!.t) / 1000).toFixed(2));
    i = j;
  }
  return out.join(" ");
}
