import { ID_PATTERN, MAX_FILE_NAME_LENGTH } from "./constants.js";
import { ERRORS, GsError } from "./errors.js";

export function checkId(kind: "user id" | "group id", id: string): string {
  if (!ID_PATTERN.test(id)) {
    // the hint states the rule: the shell then prints it once, not twice
    throw new GsError("INVALID_ID", `invalid ${kind} '${printable(id)}': ${ERRORS.INVALID_ID.hint}`);
  }
  return id;
}

/**
 * A shared file's name is a single path component: it becomes a file name on
 * every downloader's disk, so nothing in it may climb out of a directory.
 */
export function checkFileName(name: string): string {
  const bad =
    name.length === 0 ||
    name.length > MAX_FILE_NAME_LENGTH ||
    name === "." ||
    name === ".." ||
    /[/\\\u0000-\u001f\u007f]/.test(name);
  if (bad) {
    throw new GsError(
      "INVALID_FILE_NAME",
      `invalid file name '${printable(name)}': 1-${MAX_FILE_NAME_LENGTH} characters, no '/', '\\', NUL or control characters, not '.' or '..'`,
    );
  }
  return name;
}

/** For error messages: control characters shown escaped, length capped. */
export function printable(s: string): string {
  const cut = s.length > 64 ? `${s.slice(0, 64)}…` : s;
  return cut.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
