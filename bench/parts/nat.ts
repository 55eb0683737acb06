/**
 * Members behind routers, measured in the network lab: one download per path
 * (direct, reversed, punched, relayed) on the same capped links, each sharer and
 * downloader on a host of its own, and the tracker's CPU time while it relays.
 * Needs root (the lab).
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Proc } from "../../test/helpers/procs.js";
import { startClient, startTracker } from "../../test/lab/groupshare.js";
import { type Host, Lab, mbit, notRoot } from "../../test/lab/lab.js";
import type { Context } from "../context.js";
import { makeRandomFile, sha1File } from "../files.js";
import { mdTable, type Part } from "../report.js";
import { cpuSplit } from "../tools.js";

const COMMAND_MS = 30_000;
/** Every host's upload and download cap: below the relay's 40 Mbit/s per user, so the links bind, not the relay. */
const CAP_MBIT = 30;

interface Case {
  name: string;
  /** where the sharer and the downloader sit */
  sharer: "public" | "home" | "random";
  downloader: "public" | "away" | "random";
}

const CASES: Case[] = [
  { name: "direct (public sharer, downloader behind a router)", sharer: "public", downloader: "away" },
  { name: "reversed (sharer behind a router, public downloader)", sharer: "home", downloader: "public" },
  { name: "punched (each behind its own router)", sharer: "home", downloader: "away" },
  { name: "relayed (each behind a router with random ports)", sharer: "random", downloader: "random" },
];

interface Result {
  c: Case;
  seconds: number;
  mbps: number;
  path: string;
  trackerCpuPerGiB: number;
}

export async function natPart(ctx: Context, mib: number): Promise<Part> {
  const why = notRoot();
  if (why) {
    return { key: "nat", text: `### Members behind routers (lab)\n\nNot run: ${why}.\n` };
  }
  const dir = join(ctx.cluster.dir, "nat");
  await mkdir(dir, { recursive: true });
  const lab = await Lab.create();

  try {
    const caps = { up: mbit(CAP_MBIT), down: mbit(CAP_MBIT) };
    const trackerHost = await lab.host("tracker");
    // with --cpu-prof DIR, the tracker leaves its profile there
    const { proc: tracker, infoPath } = await startTracker(
      trackerHost,
      dir,
      ctx.opts.cpuProfDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${ctx.opts.cpuProfDir}`] } : {},
    );
    const routers = {
      home: await lab.router("home"),
      away: await lab.router("away"),
      randa: await lab.router("randa", { randomFully: true }),
      randb: await lab.router("randb", { randomFully: true }),
    };
    let n = 0;
    const client = async (place: string): Promise<Proc> => {
      const name = `u${++n}`;
      const behind =
        place === "home"
          ? routers.home
          : place === "away"
            ? routers.away
            : place === "random"
              ? n % 2 === 1
                ? routers.randa
                : routers.randb
              : undefined;
      const host: Host = await lab.host(`h${n}`, { ...caps, ...(behind && { behind }) });
      const p = startClient(host, name, infoPath, dir);
      await p.run(`create_user ${name} pw`, /created/, COMMAND_MS);
      await p.run(`login ${name} pw`, /^logged in as/, COMMAND_MS);
      return p;
    };
    const owner = await client("public");
    await owner.run("create_group nat", /^group nat created/, COMMAND_MS);
    const member = async (place: string) => {
      const p = await client(place);
      await p.run("join_group nat", /^asked to join/, COMMAND_MS);
      await owner.run(`accept_request nat ${p.label}`, /is now a member/, COMMAND_MS);
      return p;
    };
    const file = join(dir, "nat.bin");
    const { sha1 } = await makeRandomFile(file, mib * 2 ** 20);
    const results: Result[] = [];
    for (const c of CASES) {
      const sharer = await member(c.sharer);
      const downloader = await member(c.downloader);
      await sharer.run(`upload_file ${file} nat`, /^uploaded /, COMMAND_MS);
      const out = join(dir, `out-${downloader.label}`);
      await mkdir(out);
      const split0 = await cpuSplit(tracker.child.pid!);
      const t0 = performance.now();
      await downloader.run(`download_file nat nat.bin ${out}`, /^downloading /, COMMAND_MS);
      const end = await downloader.expect(/^download (complete|failed)/, 300_000);
      const seconds = (performance.now() - t0) / 1000;
      const split = await cpuSplit(tracker.child.pid!);
      const cpu = split.user + split.system - split0.user - split0.system;
      if (!end.startsWith("download complete")) throw new Error(`${c.name}: ${end}`);
      if ((await sha1File(join(out, "nat.bin"))) !== sha1) throw new Error(`${c.name}: the copy differs`);
      const path = /: [\d.]+ \S+ (reversed|punched|relayed)\)$/.exec(end)?.[1] ?? "direct";
      results.push({
        c,
        seconds,
        mbps: (mib * 2 ** 20 * 8) / 1e6 / seconds,
        path,
        trackerCpuPerGiB: (cpu * 1024) / mib,
      });
      ctx.say(
        `nat ${c.name}: ${seconds.toFixed(1)} s over ${path}, tracker CPU ${cpu.toFixed(2)} s ` +
          `(user ${(split.user - split0.user).toFixed(2)}, system ${(split.system - split0.system).toFixed(2)})`,
      );
      await sharer.run(`stop_share nat nat.bin`, /^stopped sharing/, COMMAND_MS);
      await rm(out, { recursive: true, force: true });
    }
    const direct = results[0]!.seconds;
    const rows = results.map((r) => [
      r.c.name,
      r.path,
      `${r.seconds.toFixed(2)} s`,
      `${r.mbps.toFixed(1)} Mbit/s`,
      (direct / r.seconds).toFixed(2),
      `${r.trackerCpuPerGiB.toFixed(1)} s`,
    ]);
    const text = [
      "### Members behind routers (lab)",
      "",
      `One ${mib} MiB download per path, sharer and downloader each on a host of its own with ` +
        `${CAP_MBIT} Mbit/s up and down (tbf), the tracker on an uncapped host; every client is a real ` +
        "./client, the tracker a real ./tracker. The time runs from `download_file` to the completion " +
        "line, so it includes finding the path (head starts: reversed 0 s, punched 1 s, relayed 4 s for " +
        "a sharer the tracker marks as behind a router). Tracker CPU is the tracker process's user + " +
        "system time during the download, per GiB of the file.",
      "",
      mdTable(["case", "path taken", "time", "throughput", "speed vs direct", "tracker CPU per GiB"], rows),
      "",
    ].join("\n");
    // a clean exit: a profile is written then
    tracker.send("quit");
    await tracker.waitExit(10_000);
    return { key: "nat", text };
  } finally {
    await lab.close();
  }
}
