import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import {
  COMMAND_NAMES,
  type CommandTarget,
  commandHelp,
  helpText,
  historyEntry,
  type Outcome,
  runLine,
} from "../../src/client/cli/commands.js";
import { complete, lastWordStart } from "../../src/client/cli/completion.js";
import { completeLine, describeDownload } from "../../src/client/cli/lines.js";
import { downloadBar, formatBytes, formatBytesExact, formatEta } from "../../src/client/cli/format.js";
import type { OpName } from "../../src/client/engine/operations.js";
import type { DownloadView } from "../../src/client/engine/types.js";
import { expandHome } from "../../src/client/paths.js";
import { closest, editDistance } from "../../src/client/cli/suggest.js";
import { quoteWord, tokenize } from "../../src/client/tokenize.js";
import { ID_RULE, MAX_FILE_NAME_LENGTH } from "../../src/shared/constants.js";
import { GsError } from "../../src/shared/errors.js";
import { checkFileName, checkId } from "../../src/shared/ids.js";
import { parseHostPort, parseTrackerInfo } from "../../src/shared/trackerInfo.js";

// The shell's parsing: words and quotes, tracker_info.txt, ids and file names, and
// runLine's answers to bad command lines. No processes, no sockets.

/** An engine whose every method fails the test: parsing errors return before touching it. */
const untouchable = new Proxy(
  {},
  {
    get(_t, key) {
      throw new Error(`runLine touched the engine (${String(key)}) for a line it should refuse`);
    },
  },
) as CommandTarget;

/** An engine that answers each operation with `answer(op, args)`. */
function engineAnswering(answer: (op: OpName, args: string[]) => unknown): CommandTarget {
  return { call: async (op: OpName, args: string[]) => answer(op, args) } as unknown as CommandTarget;
}

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
      assert.match(errorOf(await runLine(untouchable, line)), /^unknown command '.+': .*type help/);
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
    const answers: Partial<Record<OpName, unknown>> = {
      createUser: { userId: "alice" },
      login: { userId: "alice", reshared: 0, resumed: [] },
      createGroup: { groupId: "g1", owner: "alice" },
      joinGroup: { groupId: "g1" },
      leaveGroup: { groupId: "g1", withdrawn: true },
      listRequests: { groupId: "g1", requests: [] },
      acceptRequest: { groupId: "g1", userId: "bob" },
      listGroups: { prefix: "", groups: [], total: 0 },
      logout: { userId: "alice", stoppedSharing: 0 },
    };
    const client = engineAnswering((op, args) => {
      calls.push(`${op}(${args.join("|")})`);
      return answers[op];
    });
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
    const client = engineAnswering((op, [g]) => {
      if (op === "listGroups") throw new GsError("UNAUTHORIZED", "not logged in");
      if (op === "createGroup") return { groupId: checkId("group id", g!), owner: "alice" };
      throw new Error("socket hang up");
    });
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

describe("did you mean, help <command>, and the history", () => {
  it("suggests the command a typo is close to, whatever its case, and nothing for a far one", () => {
    assert.equal(closest("loign", COMMAND_NAMES), "login");
    assert.equal(closest("list_group", COMMAND_NAMES), "list_groups");
    assert.equal(closest("LIST_GROUPS", COMMAND_NAMES), "list_groups");
    assert.equal(closest("downlaod_file", COMMAND_NAMES), "download_file");
    assert.equal(closest("frobnicate", COMMAND_NAMES), undefined);
    assert.equal(closest("ls", COMMAND_NAMES), undefined);
    assert.equal(editDistance("ab", "ba"), 1);
    assert.equal(editDistance("", "abc"), 3);
  });

  it("says 'did you mean' in the error of an unknown command, and never runs the guess", async () => {
    assert.equal(
      errorOf(await runLine(untouchable, "loign alice pw")),
      "unknown command 'loign': did you mean login? (type help for the list)",
    );
    assert.match(errorOf(await runLine(untouchable, "help dowload_file")), /did you mean download_file\?/);
  });

  it("help <command> gives the usage, what it does and an example", async () => {
    const out = await runLine(untouchable, "help download_file");
    assert.ok(out && out !== "quit" && out.lines, JSON.stringify(out));
    assert.deepEqual(out.lines[0], "usage: download_file <group_id> <file_name> <destination_path>");
    assert.match(out.lines.at(-1)!, /^example: download_file \S+ \S+ \S+/);
    for (const name of COMMAND_NAMES) assert.ok(commandHelp(name), name);
  });

  it("suggests quoting when a path command gets too many arguments", async () => {
    assert.match(
      errorOf(await runLine(untouchable, "upload_file my file.bin g1")),
      /^upload_file takes 2 arguments, got 3: usage: upload_file <file_path> <group_id> \(a path with spaces goes in quotes/,
    );
    assert.doesNotMatch(errorOf(await runLine(untouchable, "join_group a b")), /quotes/);
  });

  it("asks for a password left out on a terminal (create_user twice), and keeps passwords out of the history", async () => {
    const calls: string[] = [];
    const client = engineAnswering((op, [u, p]) => {
      calls.push(`${op} ${u}:${p}`);
      return op === "login" ? { userId: u, reshared: 0, resumed: [] } : { userId: u };
    });
    const answers = ["s3cret", "b1", "b1", "one", "two"];
    const ctx = { askSecret: async () => answers.shift()! };
    assert.deepEqual(await runLine(client, "login alice", ctx), { lines: ["logged in as alice"] });
    assert.deepEqual(await runLine(client, "create_user bob", ctx), {
      lines: ["user bob created; log in with: login bob <passwd>"],
    });
    assert.match(errorOf(await runLine(client, "create_user carol", ctx)), /passwords differ/);
    assert.deepEqual(calls, ["login alice:s3cret", "createUser bob:b1"]);
    // in a script there is no one to ask: the seed's usage error
    assert.match(errorOf(await runLine(client, "login alice")), /^login takes 2 arguments, got 1/);
    assert.equal(historyEntry("login alice pw"), "login alice");
    assert.equal(historyEntry('create_user "bob" "p w"'), "create_user bob");
    assert.equal(historyEntry("login alice"), "login alice");
    assert.equal(historyEntry("list_groups"), "list_groups");
    // a mistyped command name, or a line whose quotes do not close, still keeps no password
    assert.equal(historyEntry("loign dora pw1"), "loign dora");
    assert.equal(historyEntry("creat_user dora 'p w'"), "creat_user dora");
    assert.equal(historyEntry("login dora 'pw1"), "login");
    assert.equal(historyEntry("lst_groups a b"), "lst_groups a b");
  });
});

describe("completion", () => {
  const source = {
    groupIds: async () => ["movies", "music", "docs"],
    fileNames: async (g: string) => (g === "movies" ? ["clip one.mp4", "clip2.mp4", "z.bin"] : []),
  };

  it("completes a command with a space after it", async () => {
    assert.deepEqual(await complete("acc", source), [["accept_request "], "acc"]);
    assert.deepEqual((await complete("list_", source))[0], [
      "list_files ",
      "list_groups ",
      "list_members ",
      "list_requests ",
    ]);
    assert.deepEqual(await complete("help down", source), [["download_file "], "down"]);
  });

  it("completes group ids, and the file names of the group on the line, quoted as typed", async () => {
    assert.deepEqual(await complete("list_files m", source), [["movies ", "music "], "m"]);
    assert.deepEqual(await complete("download_file movies cl", source), [
      ["clip\\ one.mp4 ", "clip2.mp4 "],
      "cl",
    ]);
    assert.deepEqual(await complete('download_file movies "clip o', source), [
      ['"clip one.mp4" '],
      '"clip o',
    ]);
    assert.deepEqual(await complete("download_file music c", source), [[], "c"]);
    assert.deepEqual(await complete("login al", source), [[], "al"]);
  });

  it("completes local paths, folders with a / and no space", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gs-complete-"));
    try {
      await mkdir(join(dir, "sub folder"));
      await writeFile(join(dir, "file.bin"), "x");
      assert.deepEqual((await complete(`upload_file ${dir}/`, source))[0], [
        `${dir}/file.bin `,
        `${dir}/sub\\ folder/`,
      ]);
      assert.deepEqual((await complete(`download_file movies z.bin "${dir}/s`, source))[0], [
        `"${dir}/sub folder/`,
      ]);
      assert.deepEqual((await complete("upload_file ~", source))[0], ["~/"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("finds where the word being typed starts", () => {
    assert.equal(lastWordStart("login al"), 6);
    assert.equal(lastWordStart("login "), 6);
    assert.equal(lastWordStart('upload_file "my fi'), 12);
    assert.equal(lastWordStart("upload_file my\\ fi"), 12);
  });
});

describe("paths and sizes", () => {
  it("expands ~ and ~/ to the home folder, and nothing else", () => {
    assert.equal(expandHome("~"), homedir());
    assert.equal(expandHome("~/x/y"), join(homedir(), "x/y"));
    assert.equal(expandHome("~bob/x"), "~bob/x");
    assert.equal(expandHome("a/~/b"), "a/~/b");
  });

  it("prints sizes for people, with the exact count where it differs", () => {
    assert.equal(formatBytes(629145600), "600.0 MiB");
    assert.equal(formatBytes(1536), "1.50 KiB");
    assert.equal(formatBytesExact(512), "512 B");
    assert.equal(formatBytesExact(1048576), "1.00 MiB (1048576 bytes)");
  });

  it("weights the prompt's bar by bytes, and has none without a download in flight", () => {
    const big = { state: "downloading", bytesDone: 900, size: 1000, speedBps: 0 } as const;
    const small = { state: "downloading", bytesDone: 0, size: 10, speedBps: 0 } as const;
    assert.match(downloadBar([big, small]), /^\[#{8}--\] 89% 0\.0 MB\/s 2 downloads$/);
    assert.equal(downloadBar([{ ...big, state: "complete" }]), "");
    assert.equal(downloadBar([]), "");
  });
});

describe("download lines", () => {
  const base: DownloadView = {
    groupId: "g",
    name: "big file.bin",
    target: "/d/big file.bin",
    state: "downloading",
    percent: 43.3,
    size: 300 * 1024 * 1024,
    pieceCount: 600,
    piecesDone: 260,
    bytesDone: 130 * 1024 * 1024,
    bytesThisRun: 100 * 1024 * 1024,
    fetchingMs: 8_000,
    uploadedBytes: 0,
    downloadedBytes: 100 * 1024 * 1024,
    ratio: 0,
    peers: [
      { userId: "a", addr: "10.0.0.1:1", path: "direct", bytes: 0 },
      { userId: "b", addr: "10.0.0.2:1", path: "direct", bytes: 0 },
    ],
    peersByPath: { direct: 2, reversed: 0, punched: 0, relayed: 0 },
    receivedByPath: { direct: 100 * 1024 * 1024, reversed: 0, punched: 0, relayed: 0 },
    speedBps: 12.5e6,
    etaSeconds: 14,
  };
  const third = { userId: "c", addr: "10.0.0.3:1", path: "reversed", bytes: 0 } as const;

  it("shows bytes done of total, percent, speed, ETA and peers", () => {
    assert.equal(
      describeDownload(base),
      "130.0 MiB/300.0 MiB 43.3%  DL 12.5 MB/s  ETA 14 s  2 peers (2 direct)",
    );
    assert.match(
      describeDownload({
        ...base,
        // one link still being made
        peers: [base.peers[0]!, third, { userId: "d", addr: "10.0.0.4:1", bytes: 0 }],
        peersByPath: { direct: 1, reversed: 1, punched: 0, relayed: 0 },
      }),
      / {2}3 peers \(1 direct, 1 reversed\)$/,
    );
    assert.match(
      describeDownload({ ...base, state: "waiting", retry: { tries: 2, nextTryMs: 1500 } }),
      /try 2 in 2 s$/,
    );
    assert.equal(formatEta(undefined), "?");
    assert.equal(formatEta(200), "3 min 20 s");
    assert.equal(formatEta(7500), "2 h 5 min");
  });

  it("reports what this run fetched and the time spent fetching, apart from what was on disk", () => {
    assert.equal(
      completeLine(base),
      'download complete: [g] "big file.bin" -> /d/big file.bin (100.0 MiB fetched in 8.00 s, 13.1 MB/s; 200.0 MiB were already on disk)',
    );
    const relayed = { direct: 60 * 1024 * 1024, reversed: 0, punched: 0, relayed: 40 * 1024 * 1024 };
    assert.match(
      completeLine({ ...base, receivedByPath: relayed }),
      /13\.1 MB\/s: 60\.0 MiB direct, 40\.0 MiB relayed; 200\.0 MiB were/,
    );
  });
});
