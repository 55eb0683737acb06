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
 * Characters a name or a message must not carry to a terminal or a log: C0 and C1
 * controls, DEL and the line and paragraph separators U+2028/2029 (escape
 * sequences, line breaks), bidi embeddings, overrides,
 * isolates and marks (text that reads other than it is), and zero-width characters
 * (names that look alike but differ).
 */
export const HOSTILE_CHAR_CLASS =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff]";
const HOSTILE_CHARS = new RegExp(HOSTILE_CHAR_CLASS, "u");
const HOSTILE_CHARS_ALL = new RegExp(HOSTILE_CHAR_CLASS, "gu");

function describeChar(c: string): string {
  const cp = c.codePointAt(0)!;
  const kind =
    cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029
      ? "a control character"
      : cp === 0x200b || cp === 0x200c || cp === 0x200d || cp === 0x2060 || cp === 0xfeff
        ? "a zero-width character"
        : "a bidi control";
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")} (${kind})`;
}

/**
 * A shared file's name, NFC-normalized: a single path component (it becomes a file
 * name on every downloader's disk, so nothing in it may climb out of a directory)
 * that holds nothing of HOSTILE_CHARS. Returns the normalized name.
 */
export function checkFileName(raw: string): string {
  const name = raw.normalize("NFC");
  const rule = `1-${MAX_FILE_NAME_LENGTH} characters, no '/', '\\', control, bidi or zero-width characters, not '.' or '..'`;
  const hostile = HOSTILE_CHARS.exec(name);
  let why: string | undefined;
  if (hostile) why = `it contains ${describeChar(hostile[0])}`;
  else if (name.length === 0 || name.length > MAX_FILE_NAME_LENGTH) why = `it has ${name.length} characters`;
  else if (name === "." || name === "..") why = `'${name}' names a directory`;
  else if (/[/\\]/.test(name)) why = "it contains a path separator";
  if (why) throw new GsError("INVALID_FILE_NAME", `invalid file name '${printable(name)}': ${why}; ${rule}`);
  return name;
}

/** True when `name` is a file name as checkFileName leaves it (valid, and NFC already). */
export function isFileName(name: string): boolean {
  try {
    return checkFileName(name) === name;
  } catch {
    return false;
  }
}

/**
 * For messages, logs and terminals: every character of HOSTILE_CHARS shown escaped
 * (`\x1b`, `\u202e`), length capped at `max` characters.
 */
export function printable(s: string, max = 64): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return cut.replace(HOSTILE_CHARS_ALL, (c) => {
    const cp = c.codePointAt(0)!;
    return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, "0")}` : `\\u${cp.toString(16).padStart(4, "0")}`;
  });
}
