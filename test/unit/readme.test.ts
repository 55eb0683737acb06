import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { COMMAND_NAMES } from "../../src/client/cli/commands.js";
import { tokenize } from "../../src/client/tokenize.js";
import { ROOT } from "../helpers/procs.js";

// The README's first run must work as written in a fresh clone: every program,
// npm script and file its shell blocks name exists (or an earlier line of the
// block makes it), and every command in its command table is one the shell runs.

const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const scripts = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> })
    .scripts,
);

/** The lines of every ```sh block, comments and blank lines dropped. */
function shellLines(): string[] {
  const lines: string[] = [];
  for (const m of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const raw of m[1]!.split("\n")) {
      const line = raw.replace(/(^|\s)#.*$/, "").trim();
      if (line) lines.push(line);
    }
  }
  return lines;
}

describe("README", () => {
  it("has shell blocks", () => {
    assert.ok(shellLines().length >= 5, "no ```sh blocks found");
  });

  it("names only programs, npm scripts and files that exist", () => {
    const made = new Set<string>();
    for (const line of shellLines()) {
      for (const step of line.split(/&&|;/).map((s) => s.trim())) {
        const words = tokenize(step);
        assert.ok(Array.isArray(words), step);
        // a file this line writes exists for the lines after it
        const into = words.indexOf(">");
        if (into >= 0 && words[into + 1]) made.add(words[into + 1]!);
        const args = words.filter((w) => !/^[A-Z_]+=/.test(w));
        const [cmd, ...rest] = args;
        if (cmd === "npm" && rest[0] === "run") {
          assert.ok(scripts.includes(rest[1]!), `README: npm run ${rest[1]} is not a script in package.json`);
        }
        if (cmd === "./tracker" || cmd === "./client") {
          assert.ok(existsSync(join(ROOT, cmd)), `README: ${cmd} does not exist`);
          const info = cmd === "./tracker" ? rest[0]! : rest[1]!;
          assert.ok(
            made.has(info) || existsSync(join(ROOT, info)),
            `README: '${step}' names ${info}, which a fresh clone does not have`,
          );
        }
      }
    }
  });

  it("lists only commands the shell runs, and every command the shell runs", () => {
    const table = readme.slice(readme.indexOf("### Commands"), readme.indexOf("### Limits"));
    const named = new Set<string>();
    for (const m of table.matchAll(/^\| `([a-z_]+)/gm)) named.add(m[1]!);
    for (const m of table.matchAll(/`([a-z_]+)[ `]/g)) if (COMMAND_NAMES.includes(m[1]!)) named.add(m[1]!);
    for (const n of [...table.matchAll(/^\| `([a-z_]+)/gm)].map((m) => m[1]!)) {
      assert.ok(
        COMMAND_NAMES.includes(n),
        `README's command table lists '${n}', which the shell does not know`,
      );
    }
    for (const n of COMMAND_NAMES) assert.ok(named.has(n), `README's command table does not mention ${n}`);
  });
});
