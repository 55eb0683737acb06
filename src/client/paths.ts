import { mkdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { GsError } from "../shared/errors.js";

/** `~` and `~/…` are the home folder, as in a shell; `~user` is left as it is. */
export function expandHome(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/") || (sep === "\\" && path.startsWith("~\\")))
    return join(homedir(), path.slice(2));
  return path;
}

/** A path typed by the user, absolute: `~` expanded, relative to the working folder. */
export function localPath(path: string): string {
  return resolve(expandHome(path));
}

/**
 * Creates the folders a download's destination lacks (as `mkdir -p`, as aria2c's
 * `--dir` does): the destination itself when it ends with a separator (it names a
 * folder), else its parent. A failure names the folder that is in the way or that
 * could not be made.
 */
export async function makeDestinationFolders(destination: string): Promise<void> {
  const path = localPath(destination);
  const folder = /[\\/]$/.test(destination) || destination === "~" ? path : dirname(path);
  // the deepest part of the path that exists, and the first folder under it that does not
  let missing = folder;
  let base = folder;
  let st = await stat(base).catch(() => undefined);
  while (!st && dirname(base) !== base) {
    missing = base;
    base = dirname(base);
    st = await stat(base).catch(() => undefined);
  }
  if (st?.isDirectory() && base === folder) return;
  if (!st?.isDirectory()) throw new GsError("BAD_REQUEST", `cannot write to ${base}: not a directory`);
  try {
    await mkdir(folder, { recursive: true, mode: 0o755 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new GsError(
      "BAD_REQUEST",
      `cannot create the folder ${missing} in ${base}: ${e.code ?? e.message}`,
    );
  }
}
