/**
 * Outside tools of the bench: installed with apt-get when missing, run with a
 * bound on their time, timed with their CPU time (bash's `times`).
 */
import { execFile, spawn } from "node:child_process";
import { access, constants, readFile } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** Binary → Debian package. */
export const TOOLS = {
  aria2c: "aria2",
  mktorrent: "mktorrent",
  opentracker: "opentracker",
  wrk: "wrk",
  sha1sum: "coreutils",
  // the network lab (test/lab/)
  ip: "iproute2",
  tc: "iproute2",
  iptables: "iptables",
} as const;
export type Tool = keyof typeof TOOLS;

/** apt-get install's bound: a slow mirror, not a hang. */
const APT_MS = 10 * 60_000;

async function onPath(bin: string): Promise<boolean> {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, bin), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Installs the Debian packages of whichever `tools` are missing (root, or sudo without a password). */
export async function ensureTools(tools: readonly Tool[], say: (line: string) => void): Promise<void> {
  const missing: string[] = [];
  for (const t of tools) if (!(await onPath(t))) missing.push(TOOLS[t]);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing)];
  say(`installing ${pkgs.join(", ")} with apt-get`);
  const asRoot = process.getuid?.() === 0;
  const cmd = asRoot ? "apt-get" : "sudo";
  const pre = asRoot ? [] : ["-n", "apt-get"];
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => run(cmd, [...pre, "install", "-y", "--no-install-recommends", ...pkgs], APT_MS, env);
  try {
    await install();
  } catch {
    // an old or missing package list: refresh it once and retry
    await run(cmd, [...pre, "update"], APT_MS, env);
    await install();
  }
  for (const t of tools) {
    if (!(await onPath(t))) throw new Error(`${t} is still missing after apt-get install ${TOOLS[t]}`);
  }
}

function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export interface Timed {
  seconds: number;
  /** user + system CPU time of the command and its children */
  cpuSeconds: number;
  stdout: string;
}

/** Runs a command to its end (non-zero exit is an error), timed; killed after `timeoutMs`. */
export function timed(cmd: string, args: string[], timeoutMs: number, cwd?: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // `times` prints the children's user and system time on its second line
    const child = spawn("bash", ["-c", '"$@"; s=$?; times >&2; exit $s', "bench", cmd, ...args], {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      if (out.length < 1e6) out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (err.length < 1e6) err += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(" ")} ended with ${code ?? signal}\n${out}\n${err}`));
        return;
      }
      const lines = err.trimEnd().split("\n");
      const cpuSeconds = (lines.at(-1) ?? "")
        .split(" ")
        .map(parseBashTime)
        .reduce((a, b) => a + b, 0);
      resolve({ seconds, cpuSeconds, stdout: out });
    });
  });
}

/** `1m2.345s` → 62.345 */
function parseBashTime(t: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(t.trim());
  return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
}

/** Installs Debian package `pkg` if `path` does not exist (for tools off PATH, like PostgreSQL's). */
export async function ensurePackage(path: string, pkg: string, say: (line: string) => void): Promise<void> {
  try {
    await access(path);
    return;
  } catch {}
  say(`installing ${pkg} with apt-get`);
  const asRoot = process.getuid?.() === 0;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await run(
    asRoot ? "apt-get" : "sudo",
    [...(asRoot ? [] : ["-n", "apt-get"]), "install", "-y", pkg],
    APT_MS,
    env,
  );
  await access(path);
}

/** User and system CPU time of a live process, in seconds (/proc/<pid>/stat, clock ticks of 1/100 s). */
export async function cpuSplit(pid: number): Promise<{ user: number; system: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(rest[11]) / 100, system: Number(rest[12]) / 100 };
}

/** User + system CPU time of a live process, in seconds. */
export async function cpuTime(pid: number): Promise<number> {
  const { user, system } = await cpuSplit(pid);
  return user + system;
}
