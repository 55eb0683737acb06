import { ID_RULE } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import type { Engine } from "../engine/engine.js";
import { type ArgKind, OPERATIONS, type OpName, type OpResult } from "../engine/operations.js";
import { closest } from "./suggest.js";
import { quoteWord, tokenize } from "../tokenize.js";
import * as say from "./lines.js";

export type { ArgKind } from "../engine/operations.js";

/** A shell command: the engine operation it runs (which declares its arguments and whether it needs a login) and its words. */
interface Command<K extends OpName = OpName> {
  op: K;
  help: string;
  example: string;
  lines(result: OpResult<K>): string[];
}

function command<K extends OpName>(
  op: K,
  help: string,
  example: string,
  lines: (result: OpResult<K>) => string[],
): Command {
  return { op, help, example, lines } as Command;
}

/** The spec's commands, with its exact syntax and argument order (the operation's). */
const COMMANDS: Record<string, Command> = {
  create_user: command(
    "createUser",
    "create an account (on a terminal, leave out the password to type it unseen)",
    "create_user alice",
    say.userCreatedLines,
  ),
  login: command(
    "login",
    "log in; shares again what you shared before (leave out the password to type it unseen)",
    "login alice",
    say.loginLines,
  ),
  remember_login: command(
    "rememberLogin",
    "log in and stay remembered on this device: a restarted client logs in by itself, until logout",
    "remember_login alice",
    (r) => [
      ...say.loginLines(r),
      "remembered on this device: a restart logs in by itself; logout forgets it",
    ],
  ),
  create_group: command(
    "createGroup",
    "create a group that you own",
    "create_group movies",
    say.groupCreatedLines,
  ),
  join_group: command("joinGroup", "ask to join a group", "join_group movies", say.joinRequestedLines),
  leave_group: command(
    "leaveGroup",
    "leave a group and stop sharing its files",
    "leave_group movies",
    say.leaveLines,
  ),
  list_requests: command(
    "listRequests",
    "pending join requests (owner only)",
    "list_requests movies",
    say.requestLines,
  ),
  list_members: command(
    "listMembers",
    "a group's members, the owner first (members only)",
    "list_members movies",
    say.memberLines,
  ),
  accept_request: command(
    "acceptRequest",
    "accept a join request (owner only)",
    "accept_request movies bob",
    say.acceptedLines,
  ),
  reject_request: command(
    "rejectRequest",
    "refuse a join request (owner only)",
    "reject_request movies bob",
    say.rejectedLines,
  ),
  remove_member: command(
    "removeMember",
    "remove a member; their shares in the group end (owner only)",
    "remove_member movies bob",
    say.removedLines,
  ),
  list_groups: command(
    "listGroups",
    "your groups, then others (a prefix finds any group)",
    "list_groups mov",
    say.groupLines,
  ),
  list_files: command(
    "listFiles",
    "the files shared in a group (members only)",
    "list_files movies",
    say.fileLines,
  ),
  upload_file: command(
    "uploadFile",
    "share a file with a group",
    'upload_file "~/Videos/my clip.mp4" movies',
    say.uploadLines,
  ),
  download_file: command(
    "downloadFile",
    "download in the background (into a folder, or to a path; missing folders are made)",
    "download_file movies clip.mp4 ~/Downloads/",
    say.downloadStartedLines,
  ),
  cancel_download: command(
    "cancelDownload",
    "stop a download, forget it and delete its partial file",
    "cancel_download movies clip.mp4",
    say.cancelledLines,
  ),
  show_downloads: command(
    "showDownloads",
    "[D] downloading / [C] complete: bytes, speed, ETA, peers, destination",
    "show_downloads",
    say.downloadListLines,
  ),
  stop_share: command(
    "stopShare",
    "stop sharing a file",
    "stop_share movies clip.mp4",
    say.stoppedShareLines,
  ),
  show_shares: command(
    "showShares",
    "what you share, with bytes served to peers",
    "show_shares",
    say.shareLines,
  ),
  logout: command("logout", "log out and stop sharing everything", "logout", say.logoutLines),
  set_limit: command(
    "setLimit",
    "a speed limit (5MB/s, 40Mbit/s, 0, unlimited): client-wide, a group's, or a download's (down only)",
    "set_limit down 5MB/s",
    say.limitSetLines,
  ),
  show_limits: command("showLimits", "the speed limits in force", "show_limits", say.limitLines),
};

/** Words the shell answers to that are not in COMMANDS. */
const BUILTINS: Record<string, { usage: string; help: string; example: string }> = {
  requests: {
    usage: "requests list_requests <group_id>",
    help: "same as list_requests",
    example: "requests list_requests movies",
  },
  help: {
    usage: "help [<command>]",
    help: "the command list, or one command's usage",
    example: "help download_file",
  },
  quit: {
    usage: "quit | exit",
    help: "leave; downloads resume at your next login (a script waits for them first)",
    example: "quit",
  },
  exit: { usage: "exit | quit", help: "same as quit", example: "exit" },
};

export const COMMAND_NAMES = [...Object.keys(COMMANDS), ...Object.keys(BUILTINS)].sort();

/** The arguments a command's operation takes, then those it may take. */
function argKinds(c: Command): { args: readonly ArgKind[]; optional: readonly ArgKind[] } {
  return OPERATIONS[c.op];
}

/** The arguments a command takes, for completion (undefined for an unknown command). */
export function argsOf(name: string): readonly ArgKind[] | undefined {
  if (name === "help") return [];
  const c = COMMANDS[name];
  return c && argKinds(c).args;
}

function usageOf(name: string): string {
  const builtin = BUILTINS[name];
  if (builtin) return builtin.usage;
  const { args, optional } = argKinds(COMMANDS[name]!);
  return [name, ...args.map((a) => `<${a}>`), ...optional.map((a) => `[<${a}>]`)].join(" ");
}

export function helpText(): string[] {
  const lines = ["commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${usageOf(name).padEnd(52)} ${c.help}`);
  for (const name of ["requests", "help", "quit"])
    lines.push(`  ${usageOf(name).padEnd(52)} ${BUILTINS[name]!.help}`);
  lines.push(`user and group ids: ${ID_RULE}. Quote arguments with spaces: "my file.bin".`);
  lines.push("~ is your home folder. Tab completes commands, groups, file names and paths.");
  return lines;
}

/** `help <command>`: its usage, what it does, an example. */
export function commandHelp(name: string): string[] | undefined {
  const c = COMMANDS[name] ?? BUILTINS[name];
  if (!c) return undefined;
  return [`usage: ${usageOf(name)}`, `  ${c.help}`, `example: ${c.example}`];
}

function unknown(name: string): string {
  const guess = closest(name, COMMAND_NAMES);
  return guess
    ? `unknown command '${name}': did you mean ${guess}? (type help for the list)`
    : `unknown command '${name}': type help for the list`;
}

export type Outcome = { lines: string[]; error?: undefined } | { error: string; lines?: undefined } | "quit";

/** What the shell can do for a command beyond the line: ask for a password without echo. */
export interface LineContext {
  /** The answer, or undefined when the user gave up (Ctrl-C). */
  askSecret?(prompt: string): Promise<string | undefined>;
}

/** Commands whose second word is a password: it may be left out and typed unseen, and the history never keeps it. */
const WITH_PASSWORD = new Set(["login", "create_user", "remember_login"]);

/** A password left out of `login <user_id>` or `create_user <user_id>`, asked for unseen (create_user: twice). */
async function withSecret(name: string, args: string[], ctx: LineContext): Promise<string[] | string> {
  if (!ctx.askSecret || args.length !== 1 || !WITH_PASSWORD.has(name)) return args;
  const password = await ctx.askSecret(`password for ${args[0]}: `);
  if (password === undefined) return `${name} cancelled`;
  if (name === "create_user") {
    const again = await ctx.askSecret("the same password again: ");
    if (again === undefined) return `${name} cancelled`;
    if (again !== password) return "the two passwords differ: nothing was created";
  }
  return [args[0]!, password];
}

/** What runLine needs of the engine: its one entry point (a test passes a stand-in). */
export type CommandTarget = Pick<Engine, "call">;

/**
 * Runs one command line. Never throws: every failure is an `error:` line. The
 * engine checks the login and the arguments (ids, file names) before it acts.
 */
export async function runLine(
  engine: CommandTarget,
  line: string,
  ctx: LineContext = {},
): Promise<Outcome | undefined> {
  const words = tokenize(line);
  if (!Array.isArray(words)) return { error: `${words.error}: close it and try again` };
  if (words.length === 0 || words[0]!.startsWith("#")) return undefined;
  let [name, ...args] = words as [string, ...string[]];
  if (name === "requests") {
    if (args[0] !== "list_requests") return { error: "did you mean: requests list_requests <group_id>" };
    name = "list_requests";
    args = args.slice(1);
  }
  if (name === "quit" || name === "exit") return "quit";
  if (name === "help") {
    if (args.length === 0) return { lines: helpText() };
    const one = commandHelp(args[0]!);
    return one ? { lines: one } : { error: unknown(args[0]!) };
  }
  const cmd = COMMANDS[name];
  if (!cmd) return { error: unknown(name) };
  try {
    const full = await withSecret(name, args, ctx);
    if (typeof full === "string") return { error: full };
    args = full;
    const kinds = argKinds(cmd);
    const most = kinds.args.length + kinds.optional.length;
    if (args.length < kinds.args.length || args.length > most) {
      const takes = most === kinds.args.length ? `${most}` : `${kinds.args.length} to ${most}`;
      const quoting = kinds.args.some((a) => a.endsWith("_path")) && args.length > most;
      return {
        error:
          `${name} takes ${takes} argument${takes === "1" ? "" : "s"}, got ${args.length}: usage: ${usageOf(name)}` +
          (quoting ? ` (a path with spaces goes in quotes: "my file.bin")` : ""),
      };
    }
    // the table pairs each operation with its words: the result is the one cmd.lines takes
    const untyped = engine as { call(op: OpName, args: string[]): Promise<OpResult<OpName>> };
    return { lines: cmd.lines(await untyped.call(cmd.op, args)) };
  } catch (err) {
    if (err instanceof GsError) {
      // a BAD_REQUEST message, and one about a pending request, say what to do themselves
      const saysWhatToDo =
        err.code === "BAD_REQUEST" || err.message.includes(err.hint) || /pending/.test(err.message);
      return { error: saysWhatToDo ? err.message : `${err.message} (${err.hint})` };
    }
    return { error: `${(err as Error).message ?? err}` };
  }
}

/**
 * The line as the history keeps it: a password typed on the line is left out
 * (`login alice pw` is kept as `login alice`), so the history file never holds one.
 */
export function historyEntry(line: string): string {
  const first = line.trimStart().split(/\s+/, 1)[0] ?? "";
  // a mistyped `loign dora pw1` holds a password as surely as `login dora pw1` does
  const name = COMMAND_NAMES.includes(first) ? first : closest(first, COMMAND_NAMES);
  if (name === undefined || !WITH_PASSWORD.has(name)) return line;
  const words = tokenize(line);
  // unbalanced quotes: no telling where the user id ends, so only the command is kept
  if (!Array.isArray(words)) return first;
  if (words.length < 3) return line;
  return `${first} ${quoteWord(words[1]!)}`;
}
