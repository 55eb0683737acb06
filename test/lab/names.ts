/**
 * Namespace names: `gsl-<pid>-<random>-<node>`. The pid is the process that built
 * the lab and the random part tells two labs of one process apart, so two runs
 * never collide; a lab whose pid is dead was killed before it could clean up, and
 * the next lab sweeps it away.
 */
import { randomBytes } from "node:crypto";
import { sh, shSync } from "./sh.js";

const PREFIX = "gsl";
const NAME = /^gsl-(\d+)-[0-9a-f]+-[a-z0-9]+$/;

/** A fresh prefix for one lab of this process. */
export function newPrefix(): string {
  return `${PREFIX}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** Namespaces on this machine (`ip netns list` prints "name (id: n)" or just "name"). */
export async function listNamespaces(): Promise<string[]> {
  const out = await sh("ip", ["netns", "list"]);
  return out
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter(Boolean);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, someone else's
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Kills whatever still runs in a namespace (by pid) and deletes it. */
export function destroyNamespaceSync(ns: string): void {
  for (const pid of shSync("ip", ["netns", "pids", ns]).split("\n").filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {}
  }
  shSync("ip", ["netns", "delete", ns]);
}

/** Deletes the namespaces of labs whose process is gone; returns their names. */
export async function sweepStale(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((ns) => {
    const m = NAME.exec(ns);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  });
  for (const ns of stale) destroyNamespaceSync(ns);
  return stale;
}
