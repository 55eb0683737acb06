import { existsSync } from "node:fs";
import { open } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The page's files. They are not compiled: from src/client/web/ they sit in ./ui; from
 * the compiled dist/src/client/web/ they are the source folder's (tsc copies no .html).
 */
export const UI_DIR = [
  fileURLToPath(new URL("./ui", import.meta.url)),
  fileURLToPath(new URL("../../../../src/client/web/ui", import.meta.url)),
].find((d) => existsSync(join(d, "index.html")))!;

/** What may be served, by extension: anything else in the folder is not. */
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
};

/** Larger than any file the page needs; a bigger one in the folder is a mistake, not served. */
const MAX_STATIC_BYTES = 4 * 1024 * 1024;

export interface StaticFile {
  type: string;
  body: Buffer;
}

/**
 * The file `urlPath` names under `root`, or undefined: `/` is index.html; no dot-files,
 * no `..`, no backslashes or NULs, no path out of root, only
 * the types above, only regular files.
 */
export async function readStatic(root: string, urlPath: string): Promise<StaticFile | undefined> {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (path === "/") path = "/index.html";
  const parts = path.split("/").slice(1);
  if (parts.some((p) => p === "" || p.startsWith(".") || p.includes("\\") || p.includes("\0")))
    return undefined;
  const type = TYPES[extname(path).toLowerCase()];
  if (!type) return undefined;
  const base = resolve(root);
  const file = resolve(base, ...parts);
  if (!file.startsWith(base + sep)) return undefined;
  const fh = await open(file, "r").catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_STATIC_BYTES) return undefined;
    return { type, body: await fh.readFile() };
  } finally {
    await fh.close();
  }
}
