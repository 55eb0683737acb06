import assert from "node:assert/strict";
import type { Proc } from "./procs.js";

/** The sentinel: a command that succeeds (so a script's exit status stays 0), and the line it ends with. */
const SENTINEL = "help quit";
const SENTINEL_END = /^example: quit$/;

/**
 * Sends one command to a client (whose stderr is merged into stdout) and returns
 * exactly the lines it printed, warnings left out. A sentinel follows the
 * command; everything before the sentinel's answer is the command's. The
 * sentinel's answer also shows that the client is alive and still reading commands.
 */
export async function say(p: Proc, command: string, timeoutMs?: number): Promise<string[]> {
  const from = p.lines.length;
  p.send(command);
  p.send(SENTINEL);
  await p.expect(SENTINEL_END, timeoutMs);
  const out = p.lines.slice(from).filter((l) => !l.startsWith("warning:"));
  const end = out.findIndex((l) => SENTINEL_END.test(l));
  // the sentinel's answer is three lines: usage, what it does, the example
  return out.slice(0, end - 2);
}

/** A command that succeeds: no `error:` line, and its first line matches. */
export async function ok(p: Proc, command: string, first: RegExp): Promise<string[]> {
  const out = await say(p, command);
  assert.ok(
    out.length > 0 && !out.some((l) => l.startsWith("error:")),
    `${p.label}: ${command}\n${out.join("\n")}`,
  );
  assert.match(out[0]!, first, `${p.label}: ${command}`);
  return out;
}

/** A command that fails: exactly one line, `error: ...`, matching `what`; the client lives on. */
export async function fails(p: Proc, command: string, what: RegExp): Promise<string> {
  const out = await say(p, command);
  assert.equal(out.length, 1, `${p.label}: ${command} printed:\n${out.join("\n")}`);
  assert.match(out[0]!, /^error: \S/, `${p.label}: ${command}`);
  assert.match(out[0]!, what, `${p.label}: ${command}`);
  assert.ok(p.alive, `${p.label} died after: ${command}`);
  return out[0]!;
}
