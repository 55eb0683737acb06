import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pinTracker } from "./tls.js";

/** The repository root (this file runs from dist/test/helpers/). */
export const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../..");

/** Default bound on any one wait for a process's output. */
export const WAIT_MS = 20_000;

/** A free TCP port on 127.0.0.1 (the OS picks it; we release it for the process to take). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/**
 * A real process whose stdin we drive and whose output lines we read in order.
 * `expect` waits for the next line matching a pattern (skipping others), bounded
 * by a timeout, and fails with everything the process said so far.
 */
export class Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  /** stderr's lines; the same array as `lines` when the two are merged */
  readonly errLines: string[];
  readonly #merged: boolean;
  #cursor = 0;
  #waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(
    readonly label: string,
    cmd: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; mergeStderr?: boolean } = {},
  ) {
    // merged: one pipe for both streams, so an error line keeps its place among the others
    this.#merged = opts.mergeStderr ?? false;
    this.errLines = this.#merged ? this.lines : [];
    const [file, argv] = this.#merged ? ["sh", ["-c", 'exec "$0" "$@" 2>&1', cmd, ...args]] : [cmd, args];
    this.child = spawn(file, argv, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: "pipe",
    });
    const feed = (stream: NodeJS.ReadableStream, into: string[]) => {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        partial += chunk;
        const parts = partial.split("\n");
        partial = parts.pop()!;
        into.push(...parts);
        for (const w of [...this.#waiters]) w();
      });
    };
    feed(this.child.stdout, this.lines);
    feed(this.child.stderr, this.errLines);
    this.child.stdin.on("error", () => {}); // writing to a killed process is part of some tests
    this.exited = new Promise((res) => {
      this.child.on("exit", (code) => {
        for (const w of [...this.#waiters]) w();
        res(code);
      });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Ends stdin: a client then finishes its downloads and exits. */
  endInput(): void {
    this.child.stdin.end();
  }

  /** Waits for the next stdout line (from the cursor on) that matches; returns it. */
  expect(pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    return this.#waitLine(this.lines, pattern, timeoutMs, true);
  }

  /** Waits for a stderr line that matches (anywhere, from the start). */
  expectErr(pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    return this.#waitLine(this.errLines, pattern, timeoutMs, false);
  }

  /** Sends a command and waits for the line it answers with. */
  async run(command: string, pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    this.send(command);
    return this.expect(pattern, timeoutMs);
  }

  #waitLine(into: string[], pattern: RegExp | string, timeoutMs: number, advance: boolean): Promise<string> {
    const matches = (l: string) => (typeof pattern === "string" ? l.includes(pattern) : pattern.test(l));
    return new Promise((res, rej) => {
      const check = () => {
        for (let i = advance ? this.#cursor : 0; i < into.length; i++) {
          if (matches(into[i]!)) {
            if (advance) this.#cursor = i + 1;
            done();
            res(into[i]!);
            return true;
          }
        }
        if (!this.alive) {
          done();
          rej(new Error(`${this.label} exited before printing ${pattern}\n${this.dump()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`${this.label}: no line matching ${pattern} within ${timeoutMs} ms\n${this.dump()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      if (!check()) this.#waiters.add(check);
    });
  }

  dump(): string {
    if (this.#merged) return `--- ${this.label} stdout and stderr:\n${this.lines.join("\n")}`;
    return `--- ${this.label} stdout:\n${this.lines.join("\n")}\n--- ${this.label} stderr:\n${this.errLines.join("\n")}`;
  }

  /** Kills (SIGKILL by default) and waits for the exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.alive) this.child.kill(signal);
    await this.exited;
  }

  /** Waits for a clean exit within the bound, else kills. Returns the exit code. */
  async waitExit(timeoutMs = WAIT_MS): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/**
 * Waits until a tracker process listens, and pins the key it printed for `port`
 * (test/helpers/tls.ts); returns the fingerprint.
 */
export async function trackerListening(p: Proc, port: number): Promise<string> {
  await p.expect(/listening on/);
  const fingerprint = /key (sha256:\S+)/.exec(p.lines.find((l) => / key sha256:/.test(l)) ?? "")?.[1];
  if (!fingerprint) throw new Error(`${p.label} printed no key fingerprint\n${p.dump()}`);
  pinTracker(port, fingerprint);
  return fingerprint;
}

/** A scratch directory with a tracker_info.txt listing `count` trackers on free ports. */
export class Cluster {
  readonly procs: Proc[] = [];
  ports: number[] = [];

  private constructor(readonly dir: string) {}

  static async create(trackers = 1): Promise<Cluster> {
    const c = new Cluster(await mkdtemp(join(tmpdir(), "gs-e2e-")));
    for (let i = 0; i < trackers; i++) c.ports.push(await freePort());
    await writeFile(c.infoPath, `${c.ports.map((p) => `127.0.0.1 ${p}`).join("\n")}\n`);
    return c;
  }

  get infoPath(): string {
    return join(this.dir, "tracker_info.txt");
  }

  /** Starts tracker `no` (1-based) and waits until it listens; its key is pinned for test/helpers/tls.ts. */
  async tracker(no = 1, extraArgs: string[] = []): Promise<Proc> {
    const p = new Proc(`tracker${no}`, join(ROOT, "tracker"), [this.infoPath, String(no), ...extraArgs]);
    this.procs.push(p);
    this.fingerprint = await trackerListening(p, this.ports[no - 1]!);
    return p;
  }

  /** The key the cluster's trackers present (all of one store present the same), once one started. */
  fingerprint = "";

  /**
   * Starts a client on a free port with its own state directory. Its stderr (error
   * and warning lines) is merged into stdout, in order, unless `separateStderr`.
   */
  async client(
    name: string,
    opts: {
      stateDir?: string;
      port?: number;
      separateStderr?: boolean;
      env?: NodeJS.ProcessEnv;
      /** more options after the seed's arguments (--web 0, --headless) */
      args?: string[];
    } = {},
  ): Promise<Proc & { port: number }> {
    const port = opts.port ?? (await freePort());
    const stateDir = opts.stateDir ?? join(this.dir, `state-${name}`);
    const p = new Proc(
      name,
      join(ROOT, "client"),
      [`127.0.0.1:${port}`, this.infoPath, "--state-dir", stateDir, ...(opts.args ?? [])],
      {
        mergeStderr: !opts.separateStderr,
        env: opts.env,
      },
    );
    this.procs.push(p);
    return Object.assign(p, { port });
  }

  /** Kills every process and removes the directory. */
  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
