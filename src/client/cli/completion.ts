import { readdir } from "node:fs/promises";
import type { Dirent } from "node:fs";
import { type ArgKind, argsOf, COMMAND_NAMES } from "./commands.js";
import { expandHome } from "../paths.js";
import { tokenize } from "../tokenize.js";

/** Where completion candidates come from: the tracker (groups, files) and the disk. */
export interface CompletionSource {
  groupIds(prefix: string): Promise<string[]>;
  fileNames(groupId: string): Promise<string[]>;
}

/** Candidates shown at most; a folder with more is listed by its first ones. */
const MAX_CANDIDATES = 200;

/**
 * Tab completion in readline's form: the candidates, and the part of the line
 * they complete. A finished word ends with a space, so the next word does not
 * glue on (`acc<Tab>` gives `accept_request `); a folder ends with `/` instead.
 */
export async function complete(line: string, source: CompletionSource): Promise<[string[], string]> {
  const start = lastWordStart(line);
  const raw = line.slice(start);
  const before = tokenize(line.slice(0, start));
  if (!Array.isArray(before)) return [[], raw];
  const typed = partialValue(raw);
  if (before.length === 0) {
    const hits = COMMAND_NAMES.filter((c) => c.startsWith(typed.toLowerCase())).map((c) => `${c} `);
    return [hits, raw];
  }
  let [name, ...args] = before as [string, ...string[]];
  if (name === "requests") {
    if (args.length === 0) return [["list_requests "].filter((c) => c.startsWith(typed)), raw];
    name = args[0]!;
    args = args.slice(1);
  }
  const kind: ArgKind | "command" | undefined = name === "help" ? "command" : argsOf(name)?.[args.length];
  let values: string[];
  switch (kind) {
    case "command":
      values = args.length === 0 ? COMMAND_NAMES : [];
      break;
    case "group_id":
      values = await source.groupIds(typed).catch(() => []);
      break;
    case "file_name": {
      const g = args[argsOf(name)!.indexOf("group_id")];
      values = g === undefined ? [] : await source.fileNames(g).catch(() => []);
      break;
    }
    case "file_path":
    case "destination_path":
      return [(await pathCandidates(typed)).map((p) => asTyped(raw, p.path, p.folder)), raw];
    default:
      values = [];
  }
  const hits = values
    .filter((v) => v.startsWith(typed))
    .slice(0, MAX_CANDIDATES)
    .map((v) => asTyped(raw, v, false));
  return [hits, raw];
}

/** Where the word under the cursor starts (after the last unquoted space). */
export function lastWordStart(line: string): number {
  let start = 0;
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"') i++;
    } else if (c === '"' || c === "'") {
      if (!inWord) start = i;
      quote = c;
      inWord = true;
    } else if (c === "\\") {
      if (!inWord) start = i;
      i++;
      inWord = true;
    } else if (/\s/.test(c)) {
      inWord = false;
      start = i + 1;
    } else if (!inWord) {
      start = i;
      inWord = true;
    }
  }
  return inWord || quote ? start : line.length;
}

/** The value of a word being typed, its open quote closed. */
function partialValue(raw: string): string {
  for (const close of ["", '"', "'"]) {
    const words = tokenize(raw + close);
    if (Array.isArray(words)) return words[0] ?? "";
  }
  return raw;
}

/** A candidate written the way the user began the word: in their quotes, or with backslashes. */
function asTyped(raw: string, value: string, folder: boolean): string {
  const end = folder ? "" : " ";
  const q = raw[0];
  if (q === '"') return `"${value.replace(/(["\\])/g, "\\$1")}${folder ? "" : '"'}${end}`;
  if (q === "'") return `'${value}${folder ? "" : "'"}${end}`;
  return `${value.replace(/([\s"'\\])/g, "\\$1")}${end}`;
}

/** Entries of the folder being typed whose names begin with what is typed; folders end with "/". */
export async function pathCandidates(typed: string): Promise<{ path: string; folder: boolean }[]> {
  if (typed === "~") return [{ path: "~/", folder: true }];
  const slash = typed.lastIndexOf("/");
  const folderTyped = slash >= 0 ? typed.slice(0, slash + 1) : "";
  const prefix = typed.slice(slash + 1);
  const folder = folderTyped === "" ? "." : expandHome(folderTyped === "~/" ? "~" : folderTyped);
  let entries: Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.name.startsWith(prefix) && (prefix.startsWith(".") || !e.name.startsWith(".")))
    .sort((a, b) => a.name.localeCompare(b.name))
    .slice(0, MAX_CANDIDATES)
    .map((e) => ({ path: `${folderTyped}${e.name}${e.isDirectory() ? "/" : ""}`, folder: e.isDirectory() }));
}
