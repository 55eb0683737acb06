import { GsError } from "../../shared/errors.js";
import { inFlight } from "../download/progress.js";
import type { EngineEmitter } from "./emitter.js";
import {
  checkArg,
  type EngineParts,
  OPERATIONS,
  type OpArgs,
  type OpName,
  type OpResult,
} from "./operations.js";
import type { DownloadView } from "./types.js";
import { downloadView } from "./views.js";

/**
 * The one core every front end drives: the shell, a web UI, an API. It answers
 * with typed results (types.ts) and tells what happens as typed events (`events`);
 * it prints nothing. Every operation goes through `call`, which checks the login
 * and the arguments as the operation declares them (operations.ts), once.
 */
export class Engine {
  readonly #p: EngineParts;
  readonly events: EngineEmitter;

  constructor(parts: EngineParts) {
    this.#p = parts;
    this.events = parts.events;
  }

  /** The logged-in user, if any. */
  get userId(): string | undefined {
    return this.#p.session.current?.userId;
  }

  /**
   * Runs operation `name` with its arguments (as text, in the operation's order):
   * `call("listFiles", ["movies"])`. Throws a GsError: UNAUTHORIZED before login,
   * INVALID_ID / INVALID_FILE_NAME for an argument outside its rule, BAD_REQUEST for
   * a wrong count, or the operation's own.
   */
  async call<K extends OpName>(name: K, args: OpArgs<K>): Promise<OpResult<K>> {
    const op = OPERATIONS[name];
    const given = args as readonly string[];
    const most = op.args.length + op.optional.length;
    if (given.length < op.args.length || given.length > most) {
      const takes = most === op.args.length ? `${most}` : `${op.args.length} to ${most}`;
      throw new GsError("BAD_REQUEST", `${name} takes ${takes} arguments, got ${given.length}`);
    }
    const login = this.#p.session.current;
    if (op.login && !login) throw new GsError("UNAUTHORIZED", "not logged in");
    const kinds = [...op.args, ...op.optional];
    const checked = given.map((v, i) => checkArg(kinds[i]!, v));
    const run = op.run as (
      e: EngineParts,
      l: typeof login,
      a: string[],
    ) => Promise<OpResult<K>> | OpResult<K>;
    return run(this.#p, login, checked);
  }

  /** This session's downloads now, without changing the list (show_downloads drops the failed ones it told). */
  downloads(): DownloadView[] {
    return this.#p.downloads.list().map(downloadView);
  }

  /** Whether the login now is remembered on this device (a restart logs in again by itself). */
  get remembered(): boolean {
    return this.#p.session.remembered;
  }

  /** Whether any download is still going, or waits in the queue to (a paused one waits for the user). */
  get downloading(): boolean {
    return this.#p.downloads.list().some((d) => inFlight(d.phase) || d.phase === "queued");
  }

  /** How many files this client shares now (complete ones and downloads' verified pieces). */
  get sharing(): number {
    return this.#p.shares.all().length;
  }

  /** Downloads that failed since the client started (a script's exit status counts them). */
  get downloadFailures(): number {
    return this.#p.downloads.failures;
  }

  /** Resolves when no download is in flight (each is bounded by its own retry schedule). */
  whenDownloadsDone(): Promise<void> {
    return this.#p.downloads.whenIdle();
  }

  /** join-request and request-accepted events at each heartbeat, until the returned function is called (see Session). */
  watchMembership(): () => void {
    return this.#p.session.watchMembership();
  }

  /** Polls for join requests and accepted requests now (they come as events); nothing before login. */
  pollMembership(): Promise<void> {
    return this.#p.session.pollMembership();
  }

  /** Group ids that start with `prefix`, yours first, for completion ([] before login or for a bad prefix). */
  async groupIds(prefix: string): Promise<string[]> {
    if (!this.userId) return [];
    try {
      checkArg("prefix", prefix);
    } catch {
      return [];
    }
    const { groups } = await this.#p.tracker.call("listGroups", { prefix });
    return groups.map((g) => g.groupId);
  }

  /** The group's file names, for completion. */
  async fileNames(groupId: string): Promise<string[]> {
    if (!this.userId) return [];
    const { files } = await this.#p.tracker.call("listFiles", { groupId });
    return files.map((f) => f.name);
  }
}
