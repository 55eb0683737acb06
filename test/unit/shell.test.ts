import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { GroupshareClient } from "../../src/client/client.js";
import { COMMAND_NAMES, helpText, type Outcome, runLine } from "../../src/client/shell.js";
import { quoteWord, tokenize } from "../../src/client/tokenize.js";
import { ID_RULE, MAX_FILE_NAME_LENGTH } from "../../src/shared/constants.js";
import { GsError } from "../../src/shared/errors.js";
import { checkFileName, checkId } from "../../src/shared/ids.js";
import { parseHostPort, parseTrackerInfo } from "../../src/shared/trackerInfo.js";

// The shell's parsing: words and quotes, tracker_info.txt, ids and file names, and
// runLine's answers to bad command lines. No processes, no sockets.

/** A client whose every method fails the test: parsing errors return before touching it. */
const untouchable = new Proxy(
  {},
  {
    get(_t, key) {
      throw new Error(`runLine touched the client (${String(key)}) for a line it should refuse`);
    },
  },
) as GroupshareClient;

function errorOf(outcome: Outcome | undefined): string {
  assert.ok(
    outcome && outcome !== "quit" && outcome.error !== undefined,
    `expected an error: ${JSON.stringify(outcome)}`,
  );
  return outcome.error;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GsError, `not a GsError: ${err}`);
    return err.code;
  }
  return "no error";
}

describe("tokenize", () => {
  it("splits on any whitespace", () => {
    assert.deepEqual(tokenize("  login  alice\tpw  "), ["login", "alice", "pw"]);
    assert.deepEqual(tokenize(""), []);
    assert.deepEqual(tokenize(" \t "), []);
  });

  it("keeps spaces inside double or single quotes, and joins quoted parts of one word", () => {
    assert.deepEqual(tokenize('upload_file "my file.bin" g1'), ["upload_file", "my file.bin", "g1"]);
    assert.deepEqual(tokenize("upload_file 'my file.bin' g1"), ["upload_file", "my file.bin", "g1"]);
    assert.deepEqual(tokenize('a"b c"d'), ["ab cd"]);
    assert.deepEqual(tokenize(`"it's" 'say "hi"'`), ["it's", 'say "hi"']);
    // an empty quoted argument is an argument (so `create_user "" pw` has two)
    assert.deepEqual(tokenize('create_user "" pw'), ["create_user", "", "pw"]);
    assert.deepEqual(tokenize("x ''"), ["x", ""]);
  });

  it("escapes the next character with a backslash, except inside single quotes", () => {
    assert.deepEqual(tokenize("my\\ file.bin"), ["my file.bin"]);
    assert.deepEqual(tokenize('"say \\"hi\\""'), ['say "hi"']);
    assert.deepEqual(tokenize('"back\\\\slash"'), ["back\\slash"]);
    assert.deepEqual(tokenize("'a\\b'"), ["a\\b"]);
    assert.deepEqual(tokenize("\\'x"), ["'x"]);
    assert.deepEqual(tokenize("end\\"), ["end\\"]); // a trailing backslash is kept
  });

  it("reports an unterminated quote instead of guessing", () => {
    assert.deepEqual(tokenize('login "alice pw'), { error: "unterminated double quote" });
    assert.deepEqual(tokenize("login 'alice pw"), { error: "unterminated single quote" });
    assert.deepEqual(tokenize('"a\\"'), { error: "unterminated double quote" });
  });

  it("reads back what quoteWord prints", () => {
    for (const w of ["plain", "my file.bin", 'say "hi"', "it's", "back\\slash", "tab\there", " lead", ""]) {
      if (w === "") continue; // quoteWord is for names, which are never empty
      assert.deepEqual(tokenize(quoteWord(w)), [w], `${JSON.stringify(w)} as ${quoteWord(w)}`);
    }
    assert.equal(quoteWord("plain.bin"), "plain.bin");
  });
});

describe("parseTrackerInfo", () => {
  it("reads IP PORT, IP:PORT and [v6]:PORT, numbering trackers from 1", () => {
    assert.deepEqual(parseTrackerInfo("127.0.0.1 7001\n127.0.0.2:7002\n[::1]:7003\n::1 7004\n"), [
      { no: 1, host: "127.0.0.1", port: 7001 },
      { no: 2, host: "127.0.0.2", port: 7002 },
      { no: 3, host: "::1", port: 7003 },
      { no: 4, host: "::1", port: 7004 },
    ]);
  });

  it("ignores blank lines, comments and CRLF; numbers only tracker lines", () => {
    const text =
      "# trackers\r\n\r\n   \n127.0.0.1   7001   # the first\r\n\t\n# 127.0.0.1 7999\n127.0.0.1:7002\n";
    assert.deepEqual(parseTrackerInfo(text), [
      { no: 1, host: "127.0.0.1", port: 7001 },
      { no: 2, host: "127.0.0.1", port: 7002 },
    ]);
    assert.deepEqual(parseTrackerInfo("localhost 7001"), [{ no: 1, host: "127.0.0.1", port: 7001 }]);
  });

  it("names the file and the line of a malformed entry", () => {
    const bad: [string, RegExp][] = [
      ["127.0.0.1 7001\nnot-an-address\n", /info\.txt line 2: .*not-an-address/],
      ["\n\n127.0.0.1 0\n", /info\.txt line 3: .*'0' is not a port/],
      ["127.0.0.1 65536", /line 1: .*65536/],
      ["127.0.0.1 70a1", /line 1: .*70a1/],
      ["127.0.0.1:", /line 1/],
      ["example.com 80", /line 1: 'example\.com' is not an IP address/],
      ["1.2.3.4 5 6", /line 1: malformed/],
      ["::1:7001", /line 1: malformed/], // an IPv6 port needs brackets
      ["999.1.1.1 7001", /line 1: .*not an IP/],
      ["# a comment\n127.0.0.1 7001\n[::1]7002\n", /line 3/],
    ];
    for (const [text, re] of bad) {
      assert.throws(() => parseTrackerInfo(text, "info.txt"), re, JSON.stringify(text));
    }
  });

  it("refuses a file that lists no tracker", () => {
    for (const text of ["", "\n\n", "# only a comment\n"]) {
      assert.throws(() => parseTrackerInfo(text, "info.txt"), /info\.txt: no tracker listed/);
    }
  });

  it("parses a client's own IP:PORT the same way", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:6001"), { host: "127.0.0.1", port: 6001 });
    assert.equal(typeof parseHostPort("127.0.0.1"), "string");
    assert.equal(typeof parseHostPort("127.0.0.1:99999"), "string");
  });
});

describe("checkId and checkFileName", () => {
  it("accepts ids of 1-32 letters, digits, '_', '-' or '.'", () => {
    for (const id of ["a", "Alice_99", "my-group.v2", "x".repeat(32), "_", "..."]) {
      assert.equal(checkId("user id", id), id);
    }
  });

  it("refuses empty, too long and out-of-set ids with INVALID_ID, stating the rule", () => {
    for (const id of ["", "x".repeat(33), "a/b", "a b", "a\u0000b", "tab\t", "ünï", "a;b", "a'b", "🙂"]) {
      assert.equal(
        codeOf(() => checkId("group id", id)),
        "INVALID_ID",
        JSON.stringify(id),
      );
    }
    const e = (() => {
      try {
        checkId("user id", "bad\u0000\nid");
      } catch (err) {
        return err as GsError;
      }
      throw new Error("no error");
    })();
    assert.ok(e.message.includes(ID_RULE), e.message);
    assert.doesNotMatch(e.message, /[\u0000-\u001f]/, "control characters are shown escaped");
    assert.match(e.message, /bad\\x00\\x0aid/);
  });

  it("accepts file names that are one harmless path component", () => {
    for (const name of [
      "my file.bin",
      ".hidden",
      "...",
      "a..b",
      "ünïcödé.txt",
      "x".repeat(MAX_FILE_NAME_LENGTH),
    ]) {
      assert.equal(checkFileName(name), name);
    }
  });

  it("refuses hostile file names with INVALID_FILE_NAME", () => {
    const hostile = [
      "",
      ".",
      "..",
      "/",
      "/etc/passwd",
      "../escape",
      "a/b",
      "a\\b",
      "..\\x",
      "nul\u0000byte",
      "line\nbreak",
      "carriage\rreturn",
      "esc\u001b[31m",
      "del\u007f",
      "x".repeat(MAX_FILE_NAME_LENGTH + 1),
    ];
    for (const name of hostile) {
      assert.equal(
        codeOf(() => checkFileName(name)),
        "INVALID_FILE_NAME",
        JSON.stringify(name),
      );
    }
  });
});

describe("runLine", () => {
  it("ignores blank lines and comments", async () => {
    assert.equal(await runLine(untouchable, ""), undefined);
    assert.equal(await runLine(untouchable, "   "), undefined);
    assert.equal(await runLine(untouchable, "# login alice pw"), undefined);
  });

  it("refuses an unknown command and says where the list is", async () => {
    for (const line of ["frobnicate", "LOGIN alice pw", "list", "request list_requests g"]) {
      assert.match(errorOf(await runLine(untouchable, line)), /^unknown command '.+': type help/);
    }
  });

  it("refuses missing and extra arguments with the command's usage", async () => {
    const cases: [string, RegExp][] = [
      ["create_user alice", /^create_user takes 2 arguments, got 1: usage: create_user <user_id> <passwd>$/],
      ["login", /^login takes 2 arguments, got 0/],
      ["login a b c", /^login takes 2 arguments, got 3/],
      ["create_group", /^create_group takes 1 argument, got 0: usage: create_group <group_id>$/],
      ["join_group a b", /^join_group takes 1 argument, got 2/],
      ["leave_group", /^leave_group takes 1 argument, got 0/],
      ["list_requests", /^list_requests takes 1 argument, got 0/],
      ["requests list_requests", /^list_requests takes 1 argument, got 0/],
      ["requests list_requests a b", /^list_requests takes 1 argument, got 2/],
      [
        "accept_request g",
        /^accept_request takes 2 arguments, got 1: usage: accept_request <group_id> <user_id>$/,
      ],
      ["list_groups x y", /^list_groups takes 0 to 1 arguments, got 2/],
      ["logout now", /^logout takes 0 arguments, got 1/],
      ['create_user "a b" c d', /^create_user takes 2 arguments, got 3/],
      ["download_file g f", /^download_file takes 3 arguments, got 2/],
    ];
    for (const [line, re] of cases) assert.match(errorOf(await runLine(untouchable, line)), re, line);
  });

  it("refuses `requests` without list_requests, and an unterminated quote", async () => {
    assert.match(errorOf(await runLine(untouchable, "requests")), /requests list_requests <group_id>/);
    assert.match(errorOf(await runLine(untouchable, "requests g1")), /requests list_requests <group_id>/);
    assert.match(
      errorOf(await runLine(untouchable, 'login "alice pw')),
      /^unterminated double quote: close it/,
    );
  });

  it("quits on quit and exit, and helps on help with the id rule", async () => {
    assert.equal(await runLine(untouchable, "quit"), "quit");
    assert.equal(await runLine(untouchable, "  exit  "), "quit");
    const help = await runLine(untouchable, "help");
    assert.ok(help && help !== "quit" && help.lines);
    assert.deepEqual(help.lines, helpText());
    assert.ok(
      help.lines.some((l) => l.includes(ID_RULE)),
      "help states the id rule",
    );
    for (const name of COMMAND_NAMES) {
      assert.ok(
        help.lines.some((l) => l.includes(name)),
        `help mentions ${name}`,
      );
    }
  });

  it("hands the arguments to the client in the spec's order, quotes removed", async () => {
    const calls: string[] = [];
    const record =
      (name: string) =>
      async (...args: string[]) => {
        calls.push(`${name}(${args.join("|")})`);
        return [`${name} ok`];
      };
    const client = {
      createUser: record("createUser"),
      login: record("login"),
      createGroup: record("createGroup"),
      joinGroup: record("joinGroup"),
      leaveGroup: record("leaveGroup"),
      listRequests: record("listRequests"),
      acceptRequest: record("acceptRequest"),
      listGroups: record("listGroups"),
      logout: record("logout"),
    } as unknown as GroupshareClient;
    for (const line of [
      'create_user alice "pass word"',
      "login alice 'pass word'",
      "create_group g1",
      "join_group g1",
      "leave_group g1",
      "list_requests g1",
      "requests list_requests g2",
      "accept_request g1 bob",
      "list_groups",
      "list_groups mov",
      "logout",
    ]) {
      const out = await runLine(client, line);
      assert.ok(out && out !== "quit" && out.lines, `${line}: ${JSON.stringify(out)}`);
    }
    assert.deepEqual(calls, [
      "createUser(alice|pass word)",
      "login(alice|pass word)",
      "createGroup(g1)",
      "joinGroup(g1)",
      "leaveGroup(g1)",
      "listRequests(g1)",
      "listRequests(g2)",
      "acceptRequest(g1|bob)",
      "listGroups()",
      "listGroups(mov)",
      "logout()",
    ]);
    const tooMany = errorOf(await runLine(client, "list_groups a b"));
    assert.match(tooMany, /^list_groups takes 0 to 1 arguments, got 2: usage: list_groups \[<prefix>\]/);
  });

  it("turns a failure into one error line with what to do, never a throw", async () => {
    const client = {
      listGroups: async () => {
        throw new GsError("UNAUTHORIZED", "not logged in");
      },
      createGroup: async (g: string) => [checkId("group id", g)],
      logout: async () => {
        throw new Error("socket hang up");
      },
    } as unknown as GroupshareClient;
    assert.equal(errorOf(await runLine(client, "list_groups")), "not logged in (log in first)");
    const invalid = errorOf(await runLine(client, "create_group a/b"));
    assert.match(invalid, /^invalid group id 'a\/b'/);
    assert.equal(invalid.split(ID_RULE).length, 2, `the id rule once, not twice: ${invalid}`);
    assert.equal(errorOf(await runLine(client, "logout")), "socket hang up");
    for (const e of ["list_groups", "create_group a/b", "logout"]) {
      assert.doesNotMatch(errorOf(await runLine(client, e)), /\n/, "one line");
    }
  });
});
