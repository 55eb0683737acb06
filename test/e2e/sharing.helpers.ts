/**
 * Helpers for the file-sharing end-to-end tests: commands that fail
 * fast on an `error:` line, groups of real clients, random files written and
 * hashed as streams.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { type Cluster, type Proc, WAIT_MS } from "../helpers/procs.js";

export type Client = Proc & { port: number };

/** A download may take a while on a busy 2-core machine: bound it generously (behaviour, not speed). */
export const DOWNLOAD_MS = 60_000;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A pattern for a literal piece of text (a file name, a path). */
export function lit(s: string): string {
  return escapeRegExp(s);
}

/**
 * Runs a command and waits for the line matching `pattern`; an `error:` line
 * before it fails the test at once (with the process's output) instead of timing out.
 */
export async function ok(p: Proc, command: string, pattern: RegExp, timeoutMs = WAIT_MS): Promise<string> {
  const either = new RegExp(`(?:${pattern.source})|^error:`, pattern.flags);
  const line = await p.run(command, either, timeoutMs);
  if (!pattern.test(line)) assert.fail(`${p.label}: '${command}' answered '${line}'\n${p.dump()}`);
  return line;
}

/**
 * Runs a command that must fail: waits for its `error:` line, or fails at once
 * on `success` (the line the command prints when it works).
 */
export async function fails(p: Proc, command: string, success: RegExp, timeoutMs = WAIT_MS): Promise<string> {
  const either = new RegExp(`^error: |(?:${success.source})`, success.flags);
  const line = await p.run(command, either, timeoutMs);
  assert.match(line, /^error: /, `${p.label}: '${command}' should have failed\n${p.dump()}`);
  return line;
}

/** Waits for a stdout line matching `pattern` anywhere in the output so far or to come; leaves the cursor alone. */
export function seen(p: Proc, pattern: RegExp, timeoutMs = WAIT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const hit = p.lines.find((l) => pattern.test(l));
      if (hit !== undefined) {
        finish();
        resolve(hit);
        return true;
      }
      if (!p.alive) {
        finish();
        reject(new Error(`${p.label} exited before printing ${pattern}\n${p.dump()}`));
        return true;
      }
      return false;
    };
    const onData = () => void check();
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`${p.label}: no line matching ${pattern} within ${timeoutMs} ms\n${p.dump()}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      p.child.stdout.off("data", onData);
      p.child.off("exit", onData);
    };
    // Proc's own listener was added first, so p.lines already holds the chunk when ours runs
    p.child.stdout.on("data", onData);
    p.child.on("exit", onData);
    check();
  });
}

/** How a name appears in client output: quoted when it holds spaces or quotes. */
export function shown(name: string): string {
  return /^[^\s"'\\]+$/.test(name) ? name : `"${name.replace(/(["\\])/g, "\\$1")}"`;
}

/** Starts a download and waits for its completion event; returns the target path the client named. */
export async function download(
  p: Proc,
  group: string,
  name: string,
  destination: string,
  timeoutMs = DOWNLOAD_MS,
): Promise<string> {
  const started = await ok(
    p,
    `download_file ${group} ${shown(name)} "${destination}"`,
    new RegExp(`^downloading \\[${group}\\] ${lit(shown(name))} to `),
  );
  const target = /^downloading \[[^\]]+\] .+? to (.+) in the background/.exec(started)![1]!;
  await p
    .expect(
      new RegExp(`^download (?:complete|failed): \\[${group}\\] ${lit(shown(name))}(?: ->|:)`),
      timeoutMs,
    )
    .then((line) => {
      if (!line.startsWith("download complete:")) assert.fail(`${p.label}: ${line}\n${p.dump()}`);
    });
  return target;
}

/**
 * Starts clients for `names` (the first owns `group`), creates and logs in
 * each user, and makes every other one a member.
 */
export async function groupOf(c: Cluster, group: string, names: string[]): Promise<Client[]> {
  const clients: Client[] = [];
  for (const n of names) clients.push(await c.client(n));
  await Promise.all(
    clients.map(async (p, i) => {
      await ok(p, `create_user ${names[i]} pw-${names[i]}`, /^user .* created/);
      await ok(p, `login ${names[i]} pw-${names[i]}`, /^logged in as /);
    }),
  );
  const owner = clients[0]!;
  await ok(owner, `create_group ${group}`, new RegExp(`^group ${group} created`));
  for (let i = 1; i < clients.length; i++) {
    await ok(clients[i]!, `join_group ${group}`, /^asked to join /);
    await ok(owner, `accept_request ${group} ${names[i]}`, new RegExp(`^${names[i]} is now a member`));
  }
  return clients;
}

export interface MadeFile {
  path: string;
  size: number;
  sha1: string;
  /** the piece SHA1s, concatenated (what the tracker registers) */
  pieces: Buffer;
}

/** Writes `size` random bytes to `path` in bounded chunks, hashing pieces and the whole as it goes. */
export async function randomFile(path: string, size: number): Promise<MadeFile> {
  const whole = createHash("sha1");
  const pieces: Buffer[] = [];
  const fh = await open(path, "wx");
  try {
    for (let at = 0; at < size; at += PIECE_SIZE) {
      const chunk = randomBytes(Math.min(PIECE_SIZE, size - at));
      await fh.write(chunk, 0, chunk.length, at);
      whole.update(chunk);
      pieces.push(createHash("sha1").update(chunk).digest());
    }
  } finally {
    await fh.close();
  }
  return { path, size, sha1: whole.digest("hex"), pieces: Buffer.concat(pieces) };
}

/** SHA1 of a file, streamed. */
export function sha1File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha1");
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (b) => h.update(b))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

/** Asserts that `path` holds exactly the bytes of `f`. */
export async function assertSameFile(path: string, f: MadeFile): Promise<void> {
  const st = await stat(path);
  assert.equal(st.size, f.size, `${path}: size`);
  assert.equal(await sha1File(path), f.sha1, `${path}: content differs from ${f.path}`);
}

/** `served=N` of a share in `show_shares`. */
export async function servedBytes(p: Proc, group: string, name: string): Promise<number> {
  const line = await ok(p, "show_shares", new RegExp(`^\\[${group}\\] ${lit(shown(name))}  `));
  const m = /served=(?:\S+ \S+ \((\d+) bytes\)|(\d+) B)/.exec(line);
  assert.ok(m, `no served= in '${line}'`);
  return Number(m[1] ?? m[2]);
}

/** `N sharers online` of a file in `list_files` (0 when it is unavailable). */
export async function sharersOnline(p: Proc, group: string, name: string): Promise<number> {
  const line = await ok(p, `list_files ${group}`, new RegExp(`^${lit(shown(name))}  `));
  if (/unavailable \(no sharer online\)/.test(line)) return 0;
  const m = /(\d+) sharers? online/.exec(line);
  assert.ok(m, `no sharer count in '${line}'`);
  return Number(m[1]);
}

/**
 * Sets a file's mtime back to exactly `mtimeNs`: `touch -d @S.N` keeps every
 * nanosecond, where fs.utimes (a double of seconds) does not round-trip mtimeMs.
 */
export async function restoreMtime(path: string, mtimeNs: bigint): Promise<void> {
  const secs = mtimeNs / 1_000_000_000n;
  const ns = String(mtimeNs % 1_000_000_000n).padStart(9, "0");
  await promisify(execFile)("touch", ["-m", "-d", `@${secs}.${ns}`, path], { timeout: WAIT_MS });
}

/** How long a frozen seeder may run per step. */
const BURST_MS = 10;

export interface Progress {
  complete: boolean;
  percent: number;
  line: string;
}

/** One show_downloads line for [g] name. */
export async function progressOf(p: Proc, name: string): Promise<Progress> {
  const line = await p.run(
    "show_downloads",
    new RegExp(`^\\[[DC]\\] \\[g\\] ${name.replace(".", "\\.")}(\\s|$)`),
  );
  const m = /\s(\d+(?:\.\d+)?)%/.exec(line);
  return { complete: line.startsWith("[C]"), percent: m ? Number(m[1]) : 0, line };
}

/**
 * Lets a SIGSTOPped seeder run in short bursts until `done` holds; leaves it stopped.
 * Bounded by a step count, not by speed: a slow machine just takes more steps.
 */
export async function stepUntil(seeder: Proc, done: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1_500; i++) {
    seeder.child.kill("SIGCONT");
    await delay(BURST_MS);
    seeder.child.kill("SIGSTOP");
    if (await done()) return;
  }
  throw new Error(`${seeder.label}: never reached ${what}`);
}

/** Steps the seeder until the download holds at least `min` percent, and checks it is not complete. */
export async function stepToPercent(
  seeder: Proc,
  downloader: Proc,
  name: string,
  min: number,
): Promise<Progress> {
  let last: Progress | undefined;
  await stepUntil(
    seeder,
    async () => {
      last = await progressOf(downloader, name);
      return last.complete || last.percent >= min;
    },
    `${min}% of ${name}`,
  );
  assert.ok(!last!.complete, `${name} finished within one ${BURST_MS} ms burst: nothing was mid-download`);
  return last!;
}

/** Polls a condition on something that prints nothing (a file on disk), bounded. */
export async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}
