/**
 * The lab's commands: `ip`, `tc` and `iptables`, run to their end with a bound on
 * their time (async while building, sync while tearing down from an exit handler).
 */
import { execFile, execFileSync } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** One configuration command; each takes milliseconds, so this bound only catches a hang. */
const COMMAND_MS = 15_000;

/** Runs a command; a non-zero exit rejects with its stderr. Resolves with stdout. */
export function sh(cmd: string, args: string[], timeoutMs = COMMAND_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 4 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** The same, synchronously; errors are swallowed (teardown goes on with the next step). */
export function shSync(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, {
      timeout: COMMAND_MS,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    return "";
  }
}

/** The binaries the lab runs (iproute2's ip and tc, iptables). */
export const LAB_TOOLS = ["ip", "tc", "iptables"] as const;

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

/** Why the lab cannot run in this process (it needs root: namespaces, qdiscs, netfilter), or undefined. */
export function notRoot(): string | undefined {
  return process.getuid?.() === 0
    ? undefined
    : "the network lab needs root (network namespaces, tc, iptables)";
}

/** Throws unless iproute2 and iptables are on the PATH (.ci/run installs them). */
export async function checkTools(): Promise<void> {
  const missing: string[] = [];
  for (const t of LAB_TOOLS) if (!(await onPath(t))) missing.push(t);
  if (missing.length > 0) {
    throw new Error(`the network lab needs ${missing.join(", ")}: apt-get install iproute2 iptables`);
  }
}
