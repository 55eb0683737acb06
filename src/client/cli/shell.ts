import { createInterface, type Interface } from "node:readline";
import { Writable } from "node:stream";
import type { Engine } from "../engine/engine.js";
import { historyEntry, type Outcome, runLine } from "./commands.js";
import { complete } from "./completion.js";
import { downloadBar } from "./format.js";

const colour = {
  red: (s: string) => `\x1b[31m${s}\x1b[0m`,
  yellow: (s: string) => `\x1b[33m${s}\x1b[0m`,
  cyan: (s: string) => `\x1b[36m${s}\x1b[0m`,
};

/** A second Ctrl-C within this long of the first, at an empty prompt with downloads running or files shared, leaves. */
export const SECOND_CTRL_C_MS = 3_000;

/** How the shell ended: a command (quit, exit), the end of input, or Ctrl-C. */
export type Ending = "quit" | "end of input" | "ctrl-c";

/** The terminal as readline sees it, with a switch that stops echo (for a password). */
class TerminalOutput extends Writable {
  muted = false;
  readonly isTTY = true;

  constructor() {
    super();
    process.stdout.on("resize", () => this.emit("resize"));
  }

  get columns(): number | undefined {
    return process.stdout.columns;
  }

  get rows(): number | undefined {
    return process.stdout.rows;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    // at once, not after the write's callback: a buffered chunk would meet the switch late
    if (!this.muted) process.stdout.write(chunk);
    done();
  }
}

/** readline's history array (documented as the `history` property, typed as readonly). */
type WithHistory = Interface & { history: string[] };

/**
 * The interactive shell on a terminal (prompt, history, completion, colours, a
 * live download bar), or a script runner when stdin is not one (commands in
 * order, plain output, errors on stderr, and at the end of input: wait for the
 * downloads in flight, then leave).
 */
export class Shell {
  readonly #engine: Engine;
  readonly #tty: boolean;
  #rl: WithHistory | undefined;
  #out: TerminalOutput | undefined;
  #progressShown = false;
  /** The prompt as last drawn: redrawn only when it changes. */
  #promptText = "";
  /** A command is running: its output comes first, news waits (see `event`). */
  #busy = false;
  /** Events held while a command runs. */
  #held: [string, boolean][] = [];
  #lastCtrlC = 0;
  #ending: Ending | undefined;
  /** Commands that failed (an `error:` line): a script's exit status. */
  failures = 0;

  constructor(engine: Engine, tty: boolean) {
    this.#engine = engine;
    this.#tty = tty;
  }

  /** Asynchronous news (download finished, warnings): printed above the prompt on a terminal. */
  event(line: string, isWarning = false): void {
    const text = this.#tty ? (isWarning ? colour.yellow(line) : colour.cyan(line)) : line;
    // news that comes while a command runs waits for the command's own answer, so a
    // download that fails at once is reported after "downloading ...", not before it
    if (this.#busy) this.#held.push([text, isWarning]);
    else this.#above(text, isWarning ? process.stderr : process.stdout);
  }

  /** A bar on the line being worked on (hashing a file): only on a terminal, only while a command runs. */
  progress(label: string, done: number, total: number): void {
    if (!this.#tty) return;
    const width = 30;
    const frac = total === 0 ? 1 : done / total;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, "-");
    process.stdout.write(`\r\x1b[2K[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${label}`);
    this.#progressShown = done < total;
    if (!this.#progressShown) process.stdout.write("\r\x1b[2K");
  }

  /** The lines typed, newest first, as the history file keeps them (no passwords). */
  get history(): string[] {
    return [...(this.#rl?.history ?? [])];
  }

  /** A line of output that never splits another: the prompt's line is cleared first and redrawn after. */
  #above(text: string, stream: NodeJS.WriteStream): void {
    if (this.#tty && this.#rl && !this.#busy) {
      process.stdout.write("\r\x1b[2K");
      stream.write(`${text}\n`);
      this.#rl.prompt(true);
    } else {
      stream.write(`${text}\n`);
    }
  }

  #print(outcome: Outcome | undefined): void {
    if (!outcome || outcome === "quit") return;
    if (this.#progressShown) process.stdout.write("\r\x1b[2K");
    this.#progressShown = false;
    if (outcome.error !== undefined) {
      this.failures++;
      const line = `error: ${outcome.error}`;
      process.stderr.write(`${this.#tty ? colour.red(line) : line}\n`);
    } else {
      for (const l of outcome.lines) process.stdout.write(`${l}\n`);
    }
  }

  /** The prompt: the user, and a bar over the downloads in flight (gone when the last one ends). */
  #prompt(): string {
    const bar = downloadBar(this.#engine.downloads());
    return `${this.#engine.userId ?? "groupshare"}${bar ? colour.cyan(` ${bar}`) : ""}> `;
  }

  #redrawPrompt(force = false): void {
    const rl = this.#rl;
    if (!rl || !this.#tty || this.#busy) return;
    const text = this.#prompt();
    if (!force && text === this.#promptText) return;
    this.#promptText = text;
    rl.setPrompt(text);
    rl.prompt(true);
  }

  /** Ctrl-C at a password prompt: the question ends with no answer. */
  #secretCancelled = false;

  /** Asks for a password with echo off; the answer never enters the history. Undefined on Ctrl-C. */
  #askSecret(rl: WithHistory, out: TerminalOutput, prompt: string): Promise<string | undefined> {
    this.#secretCancelled = false;
    return new Promise((resolve) => {
      rl.question(prompt, (answer) => {
        out.muted = false;
        process.stdout.write(this.#secretCancelled ? "^C\n" : "\n");
        if (rl.history[0] === answer) rl.history.shift();
        resolve(this.#secretCancelled ? undefined : answer);
      });
      out.muted = true;
    });
  }

  /**
   * Ctrl-C: a half-typed line is dropped; at an empty prompt it leaves, but with
   * downloads running or files shared only when pressed twice within SECOND_CTRL_C_MS.
   */
  #ctrlC(rl: WithHistory): void {
    if (this.#out?.muted) {
      // at a password prompt: give the command up, as a terminal's ^C does
      this.#secretCancelled = true;
      rl.write(null, { ctrl: true, name: "u" });
      rl.write("\n");
      return;
    }
    if (rl.line.length > 0) {
      rl.write(null, { ctrl: true, name: "e" });
      process.stdout.write("^C\n");
      rl.write(null, { ctrl: true, name: "u" });
      this.#redrawPrompt(true);
      return;
    }
    const running = this.#engine.downloading;
    const shared = this.#engine.sharing;
    const now = Date.now();
    if ((running || shared > 0) && now - this.#lastCtrlC > SECOND_CTRL_C_MS) {
      this.#lastCtrlC = now;
      const again = `press Ctrl-C again within ${SECOND_CTRL_C_MS / 1000} s to leave`;
      this.#above(
        running
          ? `downloads are running: ${again} (they resume at your next login)`
          : `you are sharing ${shared} file${shared === 1 ? "" : "s"}: ${again} (sharing stops until your next login)`,
        process.stdout,
      );
      return;
    }
    process.stdout.write("^C\n");
    this.#ending = "ctrl-c";
    rl.close();
  }

  /** Runs until quit/exit, the end of input or Ctrl-C; then says how it ended. */
  async run(history: string[] = []): Promise<Ending> {
    const out = this.#tty ? new TerminalOutput() : undefined;
    this.#out = out;
    const rl = createInterface({
      input: process.stdin,
      output: out,
      terminal: this.#tty,
      history,
      historySize: 1000,
      removeHistoryDuplicates: true,
      completer: (line: string, callback: (err: Error | null, result: [string[], string]) => void) => {
        complete(line, this.#engine).then(
          (r) => callback(null, r),
          () => callback(null, [[], line]),
        );
      },
    }) as WithHistory;
    this.#rl = rl;
    const live = this.#tty ? setInterval(() => this.#redrawPrompt(), 1_000) : undefined;
    rl.on("SIGINT", () => this.#ctrlC(rl));
    if (this.#tty) {
      process.stdout.write("groupshare client: type help for the commands\n");
      this.#redrawPrompt(true);
    }
    for await (const line of rl) {
      // the password typed on a login line is never kept, in memory or in the file
      if (this.#tty && rl.history[0] === line) rl.history[0] = historyEntry(line);
      this.#busy = true;
      const outcome = await runLine(
        this.#engine,
        line,
        out ? { askSecret: (p) => this.#askSecret(rl, out, p) } : {},
      );
      this.#print(outcome);
      this.#busy = false;
      const held = this.#held;
      this.#held = [];
      for (const [text, isWarning] of held) this.#above(text, isWarning ? process.stderr : process.stdout);
      if (outcome === "quit") {
        this.#ending = "quit";
        break;
      }
      this.#redrawPrompt(true);
    }
    clearInterval(live);
    this.#ending ??= "end of input";
    rl.close();
    return this.#ending;
  }

  /** Stops reading commands (a signal is leaving for us). */
  close(): void {
    this.#busy = true;
    this.#rl?.close();
  }
}
