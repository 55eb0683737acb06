import type { KeyObject } from "node:crypto";
import { hostname } from "node:os";
import { RememberedLoginFile, trackerNames } from "../deviceCredential.js";
import { stat } from "node:fs/promises";
import { Bitfield } from "../../shared/bitfield.js";
import { HEARTBEAT_INTERVAL_MS } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { fileIdOf } from "../../shared/fileId.js";
import { publicKeyFromPem } from "../../shared/tickets.js";
import type { DownloadManager } from "../download/manager.js";
import { hashFile } from "../hashing/hasher.js";
import type { PeerIdentity } from "../peerIdentity.js";
import { SignalListener } from "../reach/signalListener.js";
import type { PeerServer } from "../serving/peerServer.js";
import { identityOf, pieceCountOf, type ShareRegistry, uploadedOf } from "../serving/shares.js";
import { type ShareState, StateFile, type UserState } from "../state.js";
import type { TrackerClient } from "../tracker/trackerClient.js";
import type { SpeedLimits } from "../limits/limits.js";
import type { EngineEmitter } from "./emitter.js";
import type { LoginResult, LogoutResult, Role } from "./types.js";

/** The parts a session works with. */
export interface SessionParts {
  tracker: TrackerClient;
  shares: ShareRegistry;
  downloads: DownloadManager;
  peerServer: PeerServer;
  events: EngineEmitter;
  stateDir: string;
  /** our peer address, as the tracker hands it to downloaders */
  peerAddr: string;
  identity: () => Promise<PeerIdentity>;
  /** the speed limits: connections we dial back run under them, and each login saves its own */
  limits: SpeedLimits;
}

/** One login: whole from the moment it exists, gone at logout. */
export interface LoggedIn {
  readonly userId: string;
  /** the tracker's key for tickets: what our peer server checks a downloader's ticket with */
  readonly trackerKey: KeyObject;
  readonly state: UserState;
  readonly stateFile: StateFile;
}

interface Live extends LoggedIn {
  readonly heartbeat: NodeJS.Timeout;
  /** what the trackers ask of us for downloaders that cannot dial us */
  readonly signals: SignalListener;
  /** groups' roles and owned groups' requests at the last membership poll (see watchMembership) */
  seen: { roles: Map<string, Role>; requests: Set<string> } | undefined;
  /** the membership poll in flight */
  polling?: Promise<void>;
  /** set once the login is ending (logout, quit, a session that ended): it ends once */
  ending?: Promise<number>;
  /** the device credential this login is remembered by, if it is (a logout revokes it) */
  readonly device: string | undefined;
}

/**
 * The tracker session and what lives with it: login (shares and downloads taken up
 * again from the user's state file), the heartbeat, the state file kept in step, and
 * the ways a login ends (logout, quit, a session the tracker ended). The engine's
 * operations reach the login through `current`, never before it is whole.
 */
export class Session {
  readonly #p: SessionParts;
  readonly #remembered: RememberedLoginFile;
  #login: Live | undefined;
  #watchers = 0;

  constructor(parts: SessionParts) {
    this.#p = parts;
    this.#remembered = new RememberedLoginFile(parts.stateDir);
  }

  /** Whether the login now is remembered on this device (a restart logs in again by itself). */
  get remembered(): boolean {
    return this.#login?.device !== undefined;
  }

  get current(): LoggedIn | undefined {
    return this.#login;
  }

  /**
   * A password login. `remember`: the tracker also answers a device credential, kept
   * owner-only in the state folder, with which `loginRemembered` logs in again after a
   * restart; the password itself is never kept.
   */
  async login(userId: string, password: string, remember = false): Promise<LoginResult> {
    this.#notLoggedIn();
    const p = this.#p;
    const answer = await p.tracker.call("login", {
      userId,
      password,
      peerAddr: p.peerAddr,
      peerKey: (await p.identity()).publicKey,
      ...(remember && { remember: { name: deviceName() } }),
    });
    let device: string | undefined;
    if (remember && answer.device) {
      await this.#remembered.save({
        userId,
        ...answer.device,
        trackers: trackerNames(p.tracker.trackers),
      });
      device = answer.device.deviceId;
    }
    return this.#open(userId, answer.token, device);
  }

  /**
   * Logs in with the device credential a remembered login left in the state folder:
   * undefined when there is none; a warning, and no login, when it is refused (the
   * tracker revoked it, or the file is not safe to use).
   */
  async loginRemembered(): Promise<LoginResult | undefined> {
    this.#notLoggedIn();
    const p = this.#p;
    const r = await this.#remembered.load(p.tracker.trackers);
    if (r.state === "none") return undefined;
    if (r.state === "refused") {
      p.events.emit({ type: "warning", warning: { kind: "remembered-login", message: r.problem } });
      return undefined;
    }
    const { userId, deviceId, secret } = r.login;
    let token: string;
    try {
      ({ token } = await p.tracker.call("deviceLogin", {
        userId,
        deviceId,
        secret,
        peerAddr: p.peerAddr,
        peerKey: (await p.identity()).publicKey,
      }));
    } catch (err) {
      if (err instanceof GsError && err.code === "DEVICE_REFUSED") await this.#remembered.forget();
      throw err;
    }
    return this.#open(userId, token, deviceId);
  }

  #notLoggedIn(): void {
    if (this.#login) {
      throw new GsError("BAD_REQUEST", `already logged in as ${this.#login.userId}: logout first`);
    }
  }

  /** The rest of a login, once the tracker gave a session: the state, the heartbeat, shares and downloads again. */
  async #open(userId: string, token: string, device: string | undefined): Promise<LoginResult> {
    const p = this.#p;
    p.tracker.token = token;
    // what tickets are checked against: like every answer, from a tracker TrackerTrust accepted
    const { publicKey } = await p.tracker.call("keys");
    const trackerKey = publicKeyFromPem(publicKey);
    const stateFile = new StateFile(p.stateDir, userId);
    const state = await stateFile.load();
    const heartbeat = setInterval(() => void this.heartbeat(), HEARTBEAT_INTERVAL_MS);
    const signals = new SignalListener({
      tracker: p.tracker,
      shares: p.shares,
      peerServer: p.peerServer,
      identity: p.identity,
      warn: (warning) => p.events.emit({ type: "warning", warning }),
      limits: p.limits,
    });
    this.#login = { userId, trackerKey, state, stateFile, heartbeat, signals, seen: undefined, device };
    // a watching front end learns what is there now, so that a request made before the
    // first heartbeat is news at that heartbeat rather than part of what was there
    if (this.#watchers > 0) void this.pollMembership().catch(() => {});
    p.events.emit({ type: "logged-in", userId });
    // the limits first, so the downloads fetch under them from their first request
    p.limits.restore(state.limits);
    // resumed first: the re-share saves the state, and a save keeps only the downloads it sees
    const resumed = p.downloads.restore(state.downloads, state.maxActive);
    const reshared = await this.#reshare(state);
    return { userId, reshared, resumed };
  }

  /** Shares again what the user shared before, if each file is unchanged on disk; how many. */
  async #reshare(state: UserState): Promise<number> {
    const p = this.#p;
    const kept: ShareState[] = [];
    let shared = 0;
    for (const s of state.shares) {
      const skipped = (why: "changed" | "gone" | "refused" | "unavailable", message?: string) =>
        p.events.emit({
          type: "warning",
          warning: { kind: "reshare-skipped", groupId: s.groupId, name: s.name, path: s.path, why, message },
        });
      let st: Awaited<ReturnType<typeof stat>> | undefined;
      try {
        st = await stat(s.path);
      } catch {
        st = undefined;
      }
      if (!st?.isFile() || st.size !== s.size || st.mtimeMs !== s.mtimeMs) {
        skipped(st ? "changed" : "gone");
        continue;
      }
      // a state file from before file ids: the id comes from the piece hashes, so hash once
      s.fileId ??= await fileIdOfPath(s);
      if (!s.fileId) {
        skipped("changed");
        continue;
      }
      try {
        await p.tracker.call("announce", { groupId: s.groupId, name: s.name }, { complete: true });
      } catch (err) {
        if (err instanceof GsError && err.code === "TRACKER_UNAVAILABLE") {
          // the tracker went away mid-login: keep it in the state, shared again at the next login
          skipped("unavailable", err.message);
          kept.push(s);
          continue;
        }
        skipped("refused", (err as Error).message);
        continue;
      }
      p.shares.add({
        groupId: s.groupId,
        fileId: s.fileId,
        name: s.name,
        sha1: s.sha1,
        size: s.size,
        path: s.path,
        // the file checked just now: its size and mtime are the ones shared
        identity: identityOf(st),
        have: Bitfield.full(pieceCountOf(s.size)),
        mtimeMs: s.mtimeMs,
        servedBefore: s.uploadedBytes ?? 0,
        downloadedBytes: s.downloadedBytes ?? 0,
      });
      kept.push(s);
      shared++;
    }
    state.shares = kept;
    await this.save();
    return shared;
  }

  /** Every HEARTBEAT_INTERVAL_MS while logged in: tells the tracker we are here, and polls for a watching front end. */
  async heartbeat(): Promise<void> {
    const l = this.#login;
    if (!l || l.ending) return;
    try {
      await this.#p.tracker.call("heartbeat", {});
    } catch (err) {
      // our own logout or quit ends the session too: that is no news, and it saves the state itself
      if (err instanceof GsError && err.code === "UNAUTHORIZED" && this.#login === l && !l.ending) {
        this.#p.events.emit({ type: "warning", warning: { kind: "session-ended" } });
        await this.#endLogin("session-ended");
      }
      // a tracker outage is retried at the next beat; commands report it themselves
      return;
    }
    if (this.#watchers > 0) await this.pollMembership().catch(() => {});
  }

  /**
   * Asks the tracker now what the watch asks at each heartbeat (a front end's refresh;
   * the heartbeat's own). One poll at a time: a call during one waits for it.
   */
  pollMembership(): Promise<void> {
    const l = this.#login;
    if (!l) return Promise.resolve();
    l.polling ??= this.#pollMembership(l).finally(() => {
      l.polling = undefined;
    });
    return l.polling;
  }

  /**
   * The user's groups and the requests of those they own, against the last poll's:
   * what is new is told (a join request; a request of ours accepted). The first poll
   * of a login only learns what is there. Groups beyond LIST_GROUPS_LIMIT are not
   * seen (yours come first).
   */
  async #pollMembership(l: Live): Promise<void> {
    const tracker = this.#p.tracker;
    const { groups } = await tracker.call("listGroups", {});
    const roles = new Map<string, Role>();
    for (const g of groups) if (g.role !== "none") roles.set(g.groupId, g.role);
    const requests = new Set<string>();
    const arrived = [];
    for (const [groupId, role] of roles) {
      if (role !== "owner") continue;
      for (const r of (await tracker.call("listRequests", { groupId })).requests) {
        const key = `${groupId}\0${r.userId}`;
        requests.add(key);
        if (l.seen && !l.seen.requests.has(key)) arrived.push({ groupId, ...r });
      }
    }
    if (this.#login !== l || l.ending) return;
    const before = l.seen;
    l.seen = { roles, requests };
    if (!before) return;
    for (const request of arrived) this.#p.events.emit({ type: "join-request", request });
    for (const [groupId, role] of roles) {
      // only an accepted request makes a member; a request made and accepted between two polls was never seen pending
      if (role === "member" && before.roles.get(groupId) !== "member")
        this.#p.events.emit({ type: "request-accepted", groupId });
    }
  }

  /**
   * join-request and request-accepted events: while at least one watch is open, each
   * heartbeat polls for them (pollMembership). The shell does not watch, so a shell
   * costs the tracker nothing more. The returned function ends this watch.
   */
  watchMembership(): () => void {
    this.#watchers++;
    if (this.#login && !this.#login.seen) void this.pollMembership().catch(() => {});
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.#watchers--;
    };
  }

  /** Saves the login's state (shares, and the downloads as they are now); a failure is a warning. */
  save(): Promise<void> {
    const l = this.#login;
    if (!l) return Promise.resolve();
    l.state.downloads = this.#p.downloads.snapshot();
    l.state.maxActive = this.#p.downloads.maxActive;
    l.state.limits = this.#p.limits.toSave();
    // the shares' lifetime totals as they are now (a share not live, skipped at login, keeps its own)
    for (const s of l.state.shares) {
      const live = this.#p.shares.find(s.groupId, s.name);
      if (live && live.fileId === s.fileId) {
        s.uploadedBytes = uploadedOf(live);
        s.downloadedBytes = live.downloadedBytes;
      }
    }
    return l.stateFile.save(l.state).catch((err) => {
      this.#p.events.emit({
        type: "warning",
        warning: { kind: "state-save-failed", path: l.stateFile.path, message: (err as Error).message },
      });
    });
  }

  /** A share that survives logout (an upload, a completed download), replacing one of the same name. */
  remember(l: LoggedIn, s: ShareState): Promise<void> {
    l.state.shares = l.state.shares.filter((x) => !(x.groupId === s.groupId && x.name === s.name));
    l.state.shares.push(s);
    return this.save();
  }

  /** Forgets the shares of a group, or one file of it. */
  forget(l: LoggedIn, groupId: string, name?: string): void {
    l.state.shares = l.state.shares.filter(
      (s) => !(s.groupId === groupId && (name === undefined || s.name === name)),
    );
  }

  /**
   * Local side of logout: stop serving and downloading, keep the state on disk for
   * the next login. Once per login, however many ways of leaving meet here (a
   * quit, a signal, a heartbeat that hears the session ended): the state is saved
   * while the downloads are still listed, and only then is anything forgotten.
   * Resolves with how many files were being shared.
   */
  #endLogin(reason: "logout" | "quit" | "session-ended"): Promise<number> {
    const l = this.#login;
    if (!l) return Promise.resolve(0);
    const p = this.#p;
    l.ending ??= (async () => {
      clearInterval(l.heartbeat);
      l.signals.stop();
      const n = p.shares.all().length;
      // stopped downloads stay in the snapshot, to resume at login; one that completes
      // meanwhile is recorded as a share (the login is still ours until the save)
      await p.downloads.stopAll();
      await this.save();
      p.downloads.clear();
      p.shares.clear();
      p.limits.reset();
      this.#login = undefined;
      p.tracker.token = undefined;
      p.events.emit({ type: "logged-out", userId: l.userId, reason });
      return n;
    })();
    return l.ending;
  }

  async logout(l: LoggedIn): Promise<LogoutResult> {
    const token = this.#p.tracker.token;
    const device = this.#login?.device;
    const stoppedSharing = await this.#endLogin("logout");
    // a logout forgets this device: the tracker revokes its credential as the session ends
    if (device) await this.#remembered.forget();
    const unheard = await this.#endSession(token, device);
    return { userId: l.userId, stoppedSharing, ...(unheard !== undefined && { unheard }) };
  }

  /** Ends the session at the tracker (peers stop being handed our address); the reason it was not heard, if not. */
  async #endSession(token: string | undefined, device?: string): Promise<string | undefined> {
    if (!token) return undefined;
    const tracker = this.#p.tracker;
    tracker.token = token;
    try {
      await tracker.call("logout", device ? { device } : {});
      return undefined;
    } catch (err) {
      return (err as Error).message;
    } finally {
      tracker.token = undefined;
    }
  }

  /** quit, the end of input, a signal: the state saved first, then offline at the tracker. */
  async close(): Promise<void> {
    const token = this.#p.tracker.token;
    await this.#endLogin("quit");
    await this.#endSession(token);
  }
}

/** The file id of a share saved without one, if the file still has its whole-file SHA1. */
async function fileIdOfPath(s: ShareState): Promise<string | undefined> {
  try {
    const h = await hashFile(s.path);
    return h.sha1 === s.sha1 && h.size === s.size ? fileIdOf(h.size, h.pieces) : undefined;
  } catch {
    return undefined;
  }
}

/** What the tracker lists a remembered device as: this machine's name. */
function deviceName(): string {
  return (
    hostname()
      .replace(/[^\w.-]/g, "-")
      .slice(0, 64) || "device"
  );
}
