import { createInterface, type Interface } from "node:readline";
import { ID_RULE } from "../shared/constants.js";
import { GsError } from "../shared/errors.js";
import type { GroupshareClient } from "./client.js";
import { formatRate } from "./format.js";
import { tokenize } from "./tokenize.js";

interface Command {
  args: string[];
  /** arguments that may follow `args` */
  optional?: string[];
  help: string;
  run(client: GroupshareClient, args: string[]): Promise<string[]> | string[];
}

/** The spec's commands, with its exact syntax and argument order. */
const COMMANDS: Record<string, Command> = {
  create_user: {
    args: ["user_id", "passwd"],
    help: "create an account",
    run: (c, [u, p]) => c.createUser(u!, p!),
  },
  login: {
    args: ["user_id", "passwd"],
    help: "log in; shares again what you shared before",
    run: (c, [u, p]) => c.login(u!, p!),
  },
  create_group: {
    args: ["group_id"],
    help: "create a group that you own",
    run: (c, [g]) => c.createGroup(g!),
  },
  join_group: { args: ["group_id"], help: "ask to join a group", run: (c, [g]) => c.joinGroup(g!) },
  leave_group: {
    args: ["group_id"],
    help: "leave a group and stop sharing its files",
    run: (c, [g]) => c.leaveGroup(g!),
  },
  list_requests: {
    args: ["group_id"],
    help: "pending join requests (owner only)",
    run: (c, [g]) => c.listRequests(g!),
  },
  accept_request: {
    args: ["group_id", "user_id"],
    help: "accept a join request (owner only)",
    run: (c, [g, u]) => c.acceptRequest(g!, u!),
  },
  reject_request: {
    args: ["group_id", "user_id"],
    help: "refuse a join request (owner only)",
    run: (c, [g, u]) => c.rejectRequest(g!, u!),
  },
  remove_member: {
    args: ["group_id", "user_id"],
    help: "remove a member; their shares in the group end (owner only)",
    run: (c, [g, u]) => c.removeMember(g!, u!),
  },
  list_groups: {
    args: [],
    optional: ["prefix"],
    help: "your groups, then others (a prefix finds any group)",
    run: (c, [p]) => c.listGroups(p),
  },
  list_files: {
    args: ["group_id"],
    help: "the files shared in a group (members only)",
    run: (c, [g]) => c.listFiles(g!),
  },
  upload_file: {
    args: ["file_path", "group_id"],
    help: "share a file with a group",
    run: (c, [p, g]) => c.uploadFile(p!, g!),
  },
  download_file: {
    args: ["group_id", "file_name", "destination_path"],
    help: "download in the background (a directory receives <dir>/<file_name>)",
    run: (c, [g, f, d]) => c.downloadFile(g!, f!, d!),
  },
  show_downloads: { args: [], help: "[D] downloading / [C] complete", run: (c) => c.showDownloads() },
  stop_share: {
    args: ["group_id", "file_name"],
    help: "stop sharing a file",
    run: (c, [g, f]) => c.stopShare(g!, f!),
  },
  show_shares: { args: [], help: "what you share, with bytes served to peers", run: (c) => c.showShares() },
  logout: { args: [], help: "log out and stop sharing everything", run: (c) => c.logout() },
};

export const COMMAND_NAMES = [...Object.keys(COMMANDS), "requests", "help", "quit", "exit"].sort();

export function helpText(): string[] {
  const lines = ["commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) {
    const usage = usageOf(name, c);
    lines.push(`  ${usage.padEnd(52)} ${c.help}`);
  }
  lines.push(`  ${"requests list_requests <group_id>".padEnd(52)} same as list_requests`);
  lines.push(`  ${"help".padEnd(52)} this list`);
  lines.push(`  ${"quit | exit".padEnd(52)} leave (waits for downloads when input is a script)`);
  lines.push(`user and group ids: ${ID_RULE}. Quote arguments with spaces: "my file.bin".`);
  return lines;
}

function usageOf(name: string, c: Command): string {
  return [name, ...c.args.map((a) => `<${a}>`), ...(c.optional ?? []).map((a) => `[<${a}>]`)].join(" ");
}

export type Outcome = { lines: string[]; error?: undefined } | { error: string; lines?: undefined } | "quit";

/** Runs one command line. Never throws: every failure is an `error:` line. */
export async function runLine(client: GroupshareClient, line: string): Promise<Outcome | undefined> {
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
  if (name === "help") return { lines: helpText() };
  const cmd = COMMANDS[name];
  if (!cmd) return { error: `unknown command '${name}': type help for the list` };
  const most = cmd.args.length + (cmd.optional?.length ?? 0);
  if (args.length < cmd.args.length || args.length > most) {
    const takes = most === cmd.args.length ? `${most}` : `${cmd.args.length} to ${most}`;
    return {
      error: `${name} takes ${takes} argument${takes === "1" ? "" : "s"}, got ${args.length}: usage: ${usageOf(name, cmd)}`,
    };
  }
  try {
    return { lines: await cmd.run(client, args) };
  } catch (err) {
    if (err instanceof GsError) {
      // a BAD_REQUEST message says what to do itself
      const useful = err.code !== "BAD_REQUEST" && err.hint && !err.message.includes(err.hint);
      const hint = useful ? ` (${err.hint})` : "";
      return { error: `${err.message}${hint}` };
    }
    return { error: `${(err as Error).message ?? err}` };
  }
}

const colour = {
  red: (s: string) => `\x1b[31m${s}\x1b[0m`,
  yellow: (s: string) => `\x1b[33m${s}\x1b[0m`,
  cyan: (s: string) => `\x1b[36m${s}\x1b[0m`,
};

/**
 * The interactive shell on a terminal (prompt, history, completion, colours), or
 * a script runner when stdin is not one (commands in order, plain output, and at
 * the end of input: wait for downloads in flight, then leave).
 */
export class Shell {
  readonly #client: GroupshareClient;
  readonly #tty: boolean;
  #rl: Interface | undefined;
  #progressShown = false;

  constructor(client: GroupshareClient, tty: boolean) {
    this.#client = client;
    this.#tty = tty;
  }

  /** Asynchronous news (download finished, warnings): printed above the prompt on a terminal. */
  event(line: string, isWarning = false): void {
    const text = this.#tty ? (isWarning ? colour.yellow(line) : colour.cyan(line)) : line;
    // news that comes while a command runs waits for the command's own answer, so a
    // download that fails at once is reported after "downloading ...", not before it
    if (this.#held) this.#held.push([text, isWarning]);
    else this.#above(text, isWarning ? process.stderr : process.stdout);
  }

  /** Events held while a command runs (undefined when none is running). */
  #held: [string, boolean][] | undefined;

  progress(label: string, done: number, total: number): void {
    if (!this.#tty) return;
    const width = 30;
    const frac = total === 0 ? 1 : done / total;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, "-");
    process.stdout.write(`\r\x1b[2K[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${label}`);
    this.#progressShown = done < total;
    if (!this.#progressShown) process.stdout.write("\r\x1b[2K");
  }

  #above(text: string, stream: NodeJS.WriteStream): void {
    if (this.#tty && this.#rl) {
      process.stdout.write("\r\x1b[2K");
      stream.write(`${text}\n`);
      this.#rl.prompt(true);
    } else {
      stream.write(`${text}\n`);
    }
  }

  /** ` [#####-----] 48% 92.1 MB/s` over the downloads in flight, or nothing. */
  #downloadBar(): string {
    const active = this.#client.downloads
      .list()
      .filter((d) => d.state === "downloading" || d.state === "waiting" || d.state === "starting");
    if (active.length === 0) return "";
    const pct = active.reduce((s, d) => s + d.percent, 0) / active.length;
    const speed = active.reduce((s, d) => s + d.speed, 0);
    const bar = "#".repeat(Math.round(pct / 10)).padEnd(10, "-");
    const n = active.length > 1 ? ` ${active.length} downloads` : "";
    return colour.cyan(` [${bar}] ${pct.toFixed(0)}% ${formatRate(speed)}${n}`);
  }

  #print(outcome: Outcome | undefined): void {
    if (!outcome || outcome === "quit") return;
    if (this.#progressShown) process.stdout.write("\r\x1b[2K");
    if (outcome.error !== undefined) {
      const line = `error: ${outcome.error}`;
      process.stdout.write(`${this.#tty ? colour.red(line) : line}\n`);
    } else {
      for (const l of outcome.lines) process.stdout.write(`${l}\n`);
    }
  }

  async run(history: string[] = []): Promise<string[]> {
    const rl = createInterface({
      input: process.stdin,
      output: this.#tty ? process.stdout : undefined,
      terminal: this.#tty,
      history,
      historySize: 1000,
      removeHistoryDuplicates: true,
      completer: (line: string) => {
        const word = line.trimStart();
        if (word.includes(" ")) return [[], line];
        const hits = COMMAND_NAMES.filter((c) => c.startsWith(word));
        return [hits, word];
      },
    });
    this.#rl = rl;
    // the prompt doubles as a live progress bar while downloads run
    const setPrompt = () => rl.setPrompt(`${this.#client.userId ?? "groupshare"}${this.#downloadBar()}> `);
    const live = this.#tty
      ? setInterval(() => {
          if (this.#client.downloads.list().some((d) => d.state !== "complete")) {
            setPrompt();
            rl.prompt(true);
          }
        }, 1_000)
      : undefined;
    let quit = false;
    let interrupted = false;
    rl.on("SIGINT", () => {
      // Ctrl-C at the prompt leaves, as in most shells when the line is empty
      interrupted = true;
      rl.close();
    });
    if (this.#tty) {
      process.stdout.write("groupshare client: type help for the commands\n");
      setPrompt();
      rl.prompt();
    }
    for await (const line of rl) {
      this.#held = [];
      const outcome = await runLine(this.#client, line);
      this.#print(outcome);
      const held = this.#held;
      this.#held = undefined;
      for (const [text, isWarning] of held) this.#above(text, isWarning ? process.stderr : process.stdout);
      if (outcome === "quit") {
        quit = true;
        break;
      }
      if (this.#tty) {
        setPrompt();
        rl.prompt();
      }
    }
    clearInterval(live);
    const kept = [...((rl as unknown as { history?: string[] }).history ?? [])];
    rl.close();
    this.#rl = undefined;
    // A script's end (or quit in a script) waits for its downloads; a person's quit or Ctrl-C does not.
    if (!this.#tty && !interrupted) {
      await this.#client.whenDownloadsDone();
    } else if (quit && this.#client.downloads.list().some((d) => d.state !== "complete")) {
      process.stdout.write("downloads in flight stop here; they resume at your next login\n");
    }
    return kept;
  }
}
