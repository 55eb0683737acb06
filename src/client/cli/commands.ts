import { ID_RULE } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import type { GroupshareClient } from "../client.js";
import { closest } from "./suggest.js";
import { quoteWord, tokenize } from "../tokenize.js";

/** What an argument is, for completion: ids and names come from the tracker, paths from the disk. */
export type ArgKind =
  | "user_id"
  | "passwd"
  | "group_id"
  | "file_name"
  | "file_path"
  | "destination_path"
  | "prefix";

interface Command {
  args: ArgKind[];
  /** arguments that may follow `args` */
  optional?: ArgKind[];
  help: string;
  example: string;
  run(client: GroupshareClient, args: string[]): Promise<string[]> | string[];
}

/** The spec's commands, with its exact syntax and argument order. */
const COMMANDS: Record<string, Command> = {
  create_user: {
    args: ["user_id", "passwd"],
    help: "create an account (on a terminal, leave out the password to type it unseen)",
    example: "create_user alice",
    run: (c, [u, p]) => c.createUser(u!, p!),
  },
  login: {
    args: ["user_id", "passwd"],
    help: "log in; shares again what you shared before (leave out the password to type it unseen)",
    example: "login alice",
    run: (c, [u, p]) => c.login(u!, p!),
  },
  create_group: {
    args: ["group_id"],
    help: "create a group that you own",
    example: "create_group movies",
    run: (c, [g]) => c.createGroup(g!),
  },
  join_group: {
    args: ["group_id"],
    help: "ask to join a group",
    example: "join_group movies",
    run: (c, [g]) => c.joinGroup(g!),
  },
  leave_group: {
    args: ["group_id"],
    help: "leave a group and stop sharing its files",
    example: "leave_group movies",
    run: (c, [g]) => c.leaveGroup(g!),
  },
  list_requests: {
    args: ["group_id"],
    help: "pending join requests (owner only)",
    example: "list_requests movies",
    run: (c, [g]) => c.listRequests(g!),
  },
  accept_request: {
    args: ["group_id", "user_id"],
    help: "accept a join request (owner only)",
    example: "accept_request movies bob",
    run: (c, [g, u]) => c.acceptRequest(g!, u!),
  },
  reject_request: {
    args: ["group_id", "user_id"],
    help: "refuse a join request (owner only)",
    example: "reject_request movies bob",
    run: (c, [g, u]) => c.rejectRequest(g!, u!),
  },
  remove_member: {
    args: ["group_id", "user_id"],
    help: "remove a member; their shares in the group end (owner only)",
    example: "remove_member movies bob",
    run: (c, [g, u]) => c.removeMember(g!, u!),
  },
  list_groups: {
    args: [],
    optional: ["prefix"],
    help: "your groups, then others (a prefix finds any group)",
    example: "list_groups mov",
    run: (c, [p]) => c.listGroups(p),
  },
  list_files: {
    args: ["group_id"],
    help: "the files shared in a group (members only)",
    example: "list_files movies",
    run: (c, [g]) => c.listFiles(g!),
  },
  upload_file: {
    args: ["file_path", "group_id"],
    help: "share a file with a group",
    example: 'upload_file "~/Videos/my clip.mp4" movies',
    run: (c, [p, g]) => c.uploadFile(p!, g!),
  },
  download_file: {
    args: ["group_id", "file_name", "destination_path"],
    help: "download in the background (into a folder, or to a path; missing folders are made)",
    example: "download_file movies clip.mp4 ~/Downloads/",
    run: (c, [g, f, d]) => c.downloadFile(g!, f!, d!),
  },
  cancel_download: {
    args: ["group_id", "file_name"],
    help: "stop a download, forget it and delete its partial file",
    example: "cancel_download movies clip.mp4",
    run: (c, [g, f]) => c.cancelDownload(g!, f!),
  },
  show_downloads: {
    args: [],
    help: "[D] downloading / [C] complete: bytes, speed, ETA, peers, destination",
    example: "show_downloads",
    run: (c) => c.showDownloads(),
  },
  stop_share: {
    args: ["group_id", "file_name"],
    help: "stop sharing a file",
    example: "stop_share movies clip.mp4",
    run: (c, [g, f]) => c.stopShare(g!, f!),
  },
  show_shares: {
    args: [],
    help: "what you share, with bytes served to peers",
    example: "show_shares",
    run: (c) => c.showShares(),
  },
  logout: {
    args: [],
    help: "log out and stop sharing everything",
    example: "logout",
    run: (c) => c.logout(),
  },
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

/** The arguments a command takes, for completion (undefined for an unknown command). */
export function argsOf(name: string): readonly ArgKind[] | undefined {
  if (name === "help") return [];
  return COMMANDS[name]?.args;
}

function usageOf(name: string): string {
  const builtin = BUILTINS[name];
  if (builtin) return builtin.usage;
  const c = COMMANDS[name]!;
  return [name, ...c.args.map((a) => `<${a}>`), ...(c.optional ?? []).map((a) => `[<${a}>]`)].join(" ");
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

/** A password left out of `login <user_id>` or `create_user <user_id>`, asked for unseen (create_user: twice). */
async function withSecret(name: string, args: string[], ctx: LineContext): Promise<string[] | string> {
  if (!ctx.askSecret || args.length !== 1 || (name !== "login" && name !== "create_user")) return args;
  const password = await ctx.askSecret(`password for ${args[0]}: `);
  if (password === undefined) return `${name} cancelled`;
  if (name === "create_user") {
    const again = await ctx.askSecret("the same password again: ");
    if (again === undefined) return `${name} cancelled`;
    if (again !== password) return "the two passwords differ: nothing was created";
  }
  return [args[0]!, password];
}

/** Runs one command line. Never throws: every failure is an `error:` line. */
export async function runLine(
  client: GroupshareClient,
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
    const most = cmd.args.length + (cmd.optional?.length ?? 0);
    if (args.length < cmd.args.length || args.length > most) {
      const takes = most === cmd.args.length ? `${most}` : `${cmd.args.length} to ${most}`;
      const quoting = cmd.args.some((a) => a.endsWith("_path")) && args.length > most;
      return {
        error:
          `${name} takes ${takes} argument${takes === "1" ? "" : "s"}, got ${args.length}: usage: ${usageOf(name)}` +
          (quoting ? ` (a path with spaces goes in quotes: "my file.bin")` : ""),
      };
    }
    return { lines: await cmd.run(client, args) };
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
  if (name !== "login" && name !== "create_user") return line;
  const words = tokenize(line);
  // unbalanced quotes: no telling where the user id ends, so only the command is kept
  if (!Array.isArray(words)) return first;
  if (words.length < 3) return line;
  return `${first} ${quoteWord(words[1]!)}`;
}
