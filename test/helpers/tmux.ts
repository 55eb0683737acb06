import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { WAIT_MS } from "./procs.js";

const run = promisify(execFile);

/** How often the screen is read while waiting for something on it. */
const POLL_MS = 100;

let seq = 0;

/**
 * A program on a real terminal: a tmux pane on a tmux server of its own (its own
 * socket, killed by close()), driven by keys and read by capture-pane. tmux 3.3
 * does not report a dead pane's exit status, so the program runs under a shell
 * that writes it to a file; that shell ignores SIGINT so that Ctrl-C reaches the
 * program alone.
 */
export class Terminal {
  readonly socket: string;
  readonly #statusFile: string;

  private constructor(socket: string, statusFile: string) {
    this.socket = socket;
    this.#statusFile = statusFile;
  }

  /** Starts `command` (a shell command line) in a 120x40 pane, in `cwd`. */
  static async start(command: string, cwd: string): Promise<Terminal> {
    const socket = `gs-test-${process.pid}-${++seq}`;
    const statusFile = join(cwd, `${socket}.status`);
    const t = new Terminal(socket, statusFile);
    const script = `trap '' INT; ${command}; echo $? > '${statusFile}'; sleep 600`;
    await t.#tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "-c", cwd, "sh", "-c", script);
    return t;
  }

  #tmux(...args: string[]): Promise<{ stdout: string }> {
    return run("tmux", ["-L", this.socket, ...args], { timeout: WAIT_MS });
  }

  /** Types text (literally: no key names), without Enter. */
  async type(text: string): Promise<void> {
    await this.#tmux("send-keys", "-t", "t", "-l", text);
  }

  /** Presses keys by name (Enter, Tab, C-c), one write each, as a person does. */
  async press(...keys: string[]): Promise<void> {
    for (const k of keys) await this.#tmux("send-keys", "-t", "t", k);
  }

  /** A line typed and entered. */
  async line(text: string): Promise<void> {
    await this.type(text);
    await this.press("Enter");
  }

  /** What the pane shows: each line without its trailing spaces, trailing blank lines dropped. */
  async screen(): Promise<string> {
    const { stdout } = await this.#tmux("capture-pane", "-p", "-t", "t");
    return stdout
      .split("\n")
      .map((l) => l.trimEnd())
      .join("\n")
      .trimEnd();
  }

  /** Waits until the screen satisfies `test` (a pattern or a predicate); returns the screen. */
  async waitFor(test: RegExp | ((screen: string) => boolean), timeoutMs = WAIT_MS): Promise<string> {
    const ok = typeof test === "function" ? test : (s: string) => test.test(s);
    const until = Date.now() + timeoutMs;
    let screen = "";
    for (let i = 0; i < timeoutMs / POLL_MS + 1 && Date.now() <= until; i++) {
      screen = await this.screen();
      if (ok(screen)) return screen;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error(`terminal ${this.socket}: no ${test} within ${timeoutMs} ms; the screen:\n${screen}`);
  }

  /** The last non-empty line on the screen (where the prompt is). */
  async lastLine(): Promise<string> {
    return (await this.screen()).split("\n").at(-1) ?? "";
  }

  /** Waits for the program to exit; its status. */
  async waitExit(timeoutMs = WAIT_MS): Promise<number> {
    const until = Date.now() + timeoutMs;
    for (let i = 0; i < timeoutMs / POLL_MS + 1 && Date.now() <= until; i++) {
      const text = await readFile(this.#statusFile, "utf8").catch(() => "");
      if (text.trim() !== "") return Number(text.trim());
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error(
      `terminal ${this.socket}: the program did not exit within ${timeoutMs} ms:\n${await this.screen()}`,
    );
  }

  /** Kills the tmux server (and with it the program, if still running). */
  async close(): Promise<void> {
    await this.#tmux("kill-server").catch(() => {});
  }
}
