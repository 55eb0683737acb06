import type { Duplex } from "node:stream";
import { GsError } from "../../shared/errors.js";
import type { Clock } from "../peers/clock.js";
import { type LimitNode, LimitTree } from "./buckets.js";
import { MAX_RATE, type Rate } from "./rate.js";
import { ThrottledStream } from "./throttle.js";

export type Direction = "up" | "down";

/** A download's file, as the limits name it. */
export interface FileRef {
  readonly groupId: string;
  readonly name: string;
}

/** The limits set, as show_limits tells them: undefined is no limit, 0 is paused. */
export interface LimitSettings {
  up: Rate;
  down: Rate;
  groups: { groupId: string; up: Rate; down: Rate }[];
  downloads: { groupId: string; name: string; down: Rate }[];
}

/** A group's or download's node with the links below it counted, so that one nobody uses and nobody set goes. */
interface Held {
  readonly node: LimitNode;
  /** a download's node (not a group's): the downloads with links share the limits above them */
  readonly download: boolean;
  links: number;
  /** closes the node and forgets it if no link and no setting needs it */
  readonly prune: () => void;
}

/**
 * Group and download limits kept at once: each is a line of show_limits and a map
 * entry, set by hand; a typo loop in a script is refused here rather than kept.
 */
export const MAX_SETTINGS = 256;

/** Where one link's leaves hang, for moving and for the counts. */
interface LinkPlace {
  readonly stream: ThrottledStream;
  up: LimitNode;
  down: LimitNode;
  /** the held nodes its leaves hang under (released when it closes) */
  held: Held[];
}

const keyOf = (f: FileRef) => `${f.groupId}\0${f.name}`;

/**
 * The client's speed limits: one tree per direction (client → group → download →
 * link; uploads have no per-download level), every peer link's ThrottledStream a leaf of
 * each. A download's link hangs under its download (down) and its group (up); a served
 * link, or one accepted before its use is known, under the "unplaced" node until its
 * ticket names the group (or a reversal names the download). Group and download nodes
 * exist while a link or a setting needs them: settings are kept apart from the nodes.
 */
export class SpeedLimits {
  readonly up: LimitTree;
  readonly down: LimitTree;
  readonly #unplaced: Record<Direction, LimitNode>;
  readonly #groups: Record<Direction, Map<string, Held>> = { up: new Map(), down: new Map() };
  readonly #downloads = new Map<string, Held>();
  readonly #groupRates: Record<Direction, Map<string, Rate>> = { up: new Map(), down: new Map() };
  readonly #downloadRates = new Map<string, { file: FileRef; rate: Rate }>();
  readonly #paused = new Set<string>();
  readonly #links = new WeakMap<object, LinkPlace>();
  readonly #onChange: (() => void) | undefined;
  #telling = false;
  /** the client-wide limits given at start (--max-up, --max-down) */
  readonly #start: { readonly up: Rate; readonly down: Rate };
  /** the client-wide limits set since (set_limit, or a login's saved ones): what a login saves */
  readonly #chosen: Record<Direction, boolean> = { up: false, down: false };

  /** onChange: a download's share of the limits may have changed (a rate, a pause, the downloads sharing a limit). */
  constructor(clock: Clock, rates: { up?: Rate; down?: Rate } = {}, onChange?: () => void) {
    this.up = new LimitTree(clock, rates.up);
    this.down = new LimitTree(clock, rates.down);
    this.#unplaced = { up: this.up.root.child(), down: this.down.root.child() };
    this.#onChange = onChange;
    this.#start = { up: rates.up, down: rates.down };
  }

  /**
   * A login's saved limits (its toSave() when it was saved) in force, after reset(); a
   * client-wide limit given at start wins for its direction. What is not a limit in
   * `saved` (a hand-edited file) is skipped.
   */
  restore(saved: unknown): void {
    this.reset();
    if (typeof saved !== "object" || saved === null) return;
    const s = saved as Record<string, unknown>;
    const entries = (list: unknown) =>
      (Array.isArray(list) ? list.slice(0, MAX_SETTINGS) : []).filter(
        (x): x is Record<string, unknown> =>
          typeof x === "object" && x !== null && typeof x.groupId === "string",
      );
    // a setting past MAX_SETTINGS, or an upload limit on a download, is skipped like the rest
    const put = (...args: Parameters<SpeedLimits["set"]>) => {
      try {
        this.set(...args);
      } catch {}
    };
    for (const d of ["up", "down"] as const) {
      if (this.#start[d] === undefined && isRate(s[d])) put(d, s[d]);
      for (const g of entries(s.groups)) if (isRate(g[d])) put(d, g[d], g.groupId as string);
    }
    for (const x of entries(s.downloads)) {
      if (typeof x.name === "string" && isRate(x.down)) put("down", x.down, x.groupId as string, x.name);
    }
  }

  /** Back to the limits given at start, group and download limits forgotten (a logout). */
  reset(): void {
    this.up.root.setRate(this.#start.up);
    this.down.root.setRate(this.#start.down);
    this.#chosen.up = false;
    this.#chosen.down = false;
    for (const d of ["up", "down"] as const)
      for (const id of [...this.#groupRates[d].keys()]) this.set(d, undefined, id);
    for (const { file } of [...this.#downloadRates.values()])
      this.set("down", undefined, file.groupId, file.name);
    this.#changed();
  }

  /**
   * The rate a download of `file` gets under the tightest download limit above it, a
   * limit shared evenly among the downloads with links under it (bytes a second); 0
   * while it is paused, undefined with no limit.
   */
  share(file: FileRef): number | undefined {
    const key = keyOf(file);
    let rate: number | undefined;
    const under = (limit: Rate, downloads: number) => {
      if (limit === undefined) return;
      const share = limit / Math.max(1, downloads);
      rate = rate === undefined ? share : Math.min(rate, share);
    };
    under(this.#downloadRate(key), 1);
    const group = this.#groups.down.get(file.groupId);
    let inGroup = 0;
    let all = 0;
    for (const d of this.#downloads.values()) {
      if (d.links === 0) continue;
      all++;
      if (d.node.parent === group?.node) inGroup++;
    }
    under(this.#groupRates.down.get(file.groupId), inGroup);
    under(this.down.root.rate, all);
    return rate;
  }

  /** Tells onChange once, after the code under way. */
  #changed(): void {
    if (this.#telling || !this.#onChange) return;
    this.#telling = true;
    queueMicrotask(() => {
      this.#telling = false;
      this.#onChange?.();
    });
  }

  /**
   * `transport` throttled, for TLS to run over: as a link of `file`'s download, or
   * unplaced (a served or accepted connection) until place() or placeDownload().
   */
  link(transport: Duplex, file?: FileRef): ThrottledStream {
    const held = file ? this.#hold(file) : undefined;
    const up = held ? held[0].node.child() : this.#unplaced.up.child();
    const down = held ? held[2].node.child() : this.#unplaced.down.child();
    // what is accepted is served, until a download claims it (placeDownload)
    const stream = new ThrottledStream(transport, { up, down }, file ? "download" : "serve");
    const place: LinkPlace = { stream, up, down, held: held ?? [] };
    this.#links.set(stream, place);
    stream.once("close", () => this.#release(place));
    return stream;
  }

  /**
   * Makes `socket` (the TLS over a link) stand for the link, so that whoever is handed
   * the socket can place it.
   */
  bind(socket: object, link: object): void {
    const place = this.#links.get(link);
    if (place) this.#links.set(socket, place);
  }

  /** A served link (or the TLS bound to it): its group is known (from its ticket). */
  placeServed(link: object, groupId: string): void {
    const place = this.#links.get(link);
    if (!place || place.up.closed) return;
    const up = this.#group("up", groupId);
    const down = this.#group("down", groupId);
    up.links++;
    down.links++;
    place.up.moveTo(up.node);
    place.down.moveTo(down.node);
    this.#release(place);
    place.held = [up, down];
  }

  /** An accepted link (or the TLS bound to it) that a download dialled back turns out to be. */
  placeDownload(link: object, file: FileRef): void {
    const place = this.#links.get(link);
    if (!place || place.up.closed) return;
    const held = this.#hold(file);
    place.up.moveTo(held[0].node);
    place.down.moveTo(held[2].node);
    this.#release(place);
    place.held = held;
    place.stream.toDownload();
  }

  /**
   * A new rate: client-wide, a group's, or (down only) a download's. Throws GsError
   * BAD_REQUEST for an upload limit on a download.
   */
  set(direction: Direction, rate: Rate, groupId?: string, name?: string): void {
    if (direction === "down") this.#changed();
    if (groupId === undefined) {
      (direction === "up" ? this.up : this.down).root.setRate(rate);
      this.#chosen[direction] = true;
      return;
    }
    if (name === undefined) {
      const rates = this.#groupRates[direction];
      if (rate === undefined) rates.delete(groupId);
      else {
        if (!rates.has(groupId)) this.#room();
        rates.set(groupId, rate);
      }
      const held = this.#groups[direction].get(groupId);
      held?.node.setRate(rate);
      held?.prune();
      return;
    }
    if (direction === "up")
      throw new GsError("BAD_REQUEST", "an upload limit is client-wide or a group's, not a download's");
    const file = { groupId, name };
    const key = keyOf(file);
    if (rate === undefined) this.#downloadRates.delete(key);
    else {
      if (!this.#downloadRates.has(key)) this.#room();
      this.#downloadRates.set(key, { file, rate });
    }
    this.#applyDownload(key);
  }

  #room(): void {
    const kept = this.#groupRates.up.size + this.#groupRates.down.size + this.#downloadRates.size;
    if (kept >= MAX_SETTINGS)
      throw new GsError(
        "BAD_REQUEST",
        `${MAX_SETTINGS} group and download limits are set already: remove some (set them to unlimited)`,
      );
  }

  /** A download paused (its links move nothing) or resumed (its own limit again); cheap when nothing changes. */
  setPaused(file: FileRef, paused: boolean): void {
    const key = keyOf(file);
    if (this.#paused.has(key) === paused) return;
    if (paused) this.#paused.add(key);
    else this.#paused.delete(key);
    this.#applyDownload(key);
  }

  /** Forgets a download's limit and pause (it was cancelled, or is complete). */
  forget(file: FileRef): void {
    const key = keyOf(file);
    this.#downloadRates.delete(key);
    this.#paused.delete(key);
    this.#applyDownload(key);
  }

  /** Group and download nodes alive (tests check that none outlives its links and settings). */
  get nodes(): number {
    return this.#groups.up.size + this.#groups.down.size + this.#downloads.size;
  }

  /**
   * What a login keeps: settings(), but a client-wide limit only if it was set since the
   * start (a flag given at start is that run's, not the login's).
   */
  toSave(): LimitSettings {
    const s = this.settings();
    return { ...s, up: this.#chosen.up ? s.up : undefined, down: this.#chosen.down ? s.down : undefined };
  }

  settings(): LimitSettings {
    const ids = new Set([...this.#groupRates.up.keys(), ...this.#groupRates.down.keys()]);
    return {
      up: this.up.root.rate,
      down: this.down.root.rate,
      groups: [...ids].sort().map((groupId) => ({
        groupId,
        up: this.#groupRates.up.get(groupId),
        down: this.#groupRates.down.get(groupId),
      })),
      downloads: [...this.#downloadRates.values()]
        .map(({ file, rate }) => ({ groupId: file.groupId, name: file.name, down: rate }))
        .sort((a, b) => a.groupId.localeCompare(b.groupId) || a.name.localeCompare(b.name)),
    };
  }

  #downloadRate(key: string): Rate {
    return this.#paused.has(key) ? 0 : this.#downloadRates.get(key)?.rate;
  }

  #applyDownload(key: string): void {
    this.#changed();
    const held = this.#downloads.get(key);
    if (!held) return;
    held.node.setRate(this.#downloadRate(key));
    held.prune();
  }

  #group(direction: Direction, groupId: string): Held {
    const groups = this.#groups[direction];
    const found = groups.get(groupId);
    if (found) return found;
    const root = (direction === "up" ? this.up : this.down).root;
    const held: Held = {
      node: root.child(this.#groupRates[direction].get(groupId)),
      download: false,
      links: 0,
      prune: () => {
        if (held.links > 0 || this.#groupRates[direction].has(groupId)) return;
        for (const d of this.#downloads.values()) if (d.node.parent === held.node) return;
        held.node.close();
        groups.delete(groupId);
      },
    };
    groups.set(groupId, held);
    return held;
  }

  /** The nodes a link of `file`'s download hangs under (up: its group; down: its group, its download), each counting it. */
  #hold(file: FileRef): [Held, Held, Held] {
    const up = this.#group("up", file.groupId);
    const group = this.#group("down", file.groupId);
    const key = keyOf(file);
    let download = this.#downloads.get(key);
    if (!download) {
      const made: Held = {
        node: group.node.child(this.#downloadRate(key)),
        download: true,
        links: 0,
        prune: () => {
          if (made.links > 0 || this.#downloadRate(key) !== undefined) return;
          made.node.close();
          this.#downloads.delete(key);
          group.prune();
        },
      };
      download = made;
      this.#downloads.set(key, made);
    }
    const held: [Held, Held, Held] = [up, group, download];
    for (const h of held) h.links++;
    if (download.links === 1) this.#changed(); // one more download shares the limits above it
    return held;
  }

  /** A link left (or moved away from) what it hung under: nodes nobody needs go. */
  #release(place: LinkPlace): void {
    const held = place.held;
    place.held = [];
    for (const h of held) h.links--;
    if (held.some((h) => h.download && h.links === 0)) this.#changed(); // one fewer shares them
    for (const h of held) h.prune();
  }
}

function isRate(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x) && x >= 0 && x <= MAX_RATE;
}
