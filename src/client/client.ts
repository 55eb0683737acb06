import type { KeyObject } from "node:crypto";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import type { Answer } from "../shared/api.js";
import { Bitfield } from "../shared/bitfield.js";
import { HEARTBEAT_INTERVAL_MS, ID_PREFIX_PATTERN } from "../shared/constants.js";
import { GsError } from "../shared/errors.js";
import { fileIdOf } from "../shared/fileId.js";
import { checkFileName, checkId } from "../shared/ids.js";
import { publicKeyFromPem } from "../shared/tickets.js";
import { formatHostPort, type TrackerAddress } from "../shared/trackerInfo.js";
import { isIP } from "node:net";
import { DownloadManager, type DownloadStatus } from "./download/manager.js";
import { formatBytes, formatBytesExact } from "./format.js";
import { hashFile } from "./hashing/hasher.js";
import { KnownTrackers } from "./tracker/knownTrackers.js";
import { loadPeerIdentity, type PeerIdentity } from "./peerIdentity.js";
import { reachingDialer } from "./reach/reachingDialer.js";
import { Reversals } from "./reach/reversals.js";
import { SignalListener } from "./reach/signalListener.js";
import { PeerServer } from "./serving/peerServer.js";
import { identityOf, pieceCountOf, ShareRegistry } from "./serving/shares.js";
import { localPath, makeDestinationFolders } from "./paths.js";
import { prepareStateDir, savedDownloads, type ShareState, StateFile, type UserState } from "./state.js";
import { quoteWord } from "./tokenize.js";
import { filePath, groupPath, TrackerClient } from "./tracker/trackerClient.js";

/** Where the client's asynchronous news goes (download ends, warnings). */
export interface ClientEvents {
  event(line: string): void;
  warn(line: string): void;
  progress?(label: string, done: number, total: number): void;
}

export interface ClientOptions {
  trackers: TrackerAddress[];
  host: string;
  port: number;
  stateDir: string;
  events: ClientEvents;
  trackerTimeoutMs?: number;
}

interface Login {
  userId: string;
  state: UserState;
  stateFile: StateFile;
  heartbeat: NodeJS.Timeout;
  /** What the trackers ask of us for downloaders that cannot dial us. */
  signals: SignalListener;
  /** Set once the login is ending (logout, quit, a session that ended): it ends once. */
  ending?: Promise<number>;
}

/**
 * One user's client: the tracker session, what it shares, its downloads and its
 * peer server. Each command method returns the lines to print, or throws GsError.
 */
export class GroupshareClient {
  readonly tracker: TrackerClient;
  readonly shares = new ShareRegistry();
  readonly peerServer: PeerServer;
  readonly downloads: DownloadManager;
  readonly #opts: ClientOptions;
  #login: Login | undefined;
  #publicKey: KeyObject | undefined;
  #identity: Promise<PeerIdentity> | undefined;

  constructor(opts: ClientOptions) {
    this.#opts = opts;
    this.tracker = new TrackerClient({
      trackers: opts.trackers,
      timeoutMs: opts.trackerTimeoutMs,
      // trackers take our peer address's IP from our connections to them
      localAddress: specificIp(opts.host),
      known: new KnownTrackers(opts.stateDir),
    });
    const reversals = new Reversals();
    this.peerServer = new PeerServer({
      shares: this.shares,
      publicKey: () => this.#publicKey,
      warn: (line) => opts.events.warn(line),
      reversals,
    });
    const tracker = this.tracker;
    this.downloads = new DownloadManager({
      tracker: this.tracker,
      shares: this.shares,
      events: opts.events,
      selfAddr: this.peerAddr,
      onStateChange: () => void this.#saveState(),
      onComplete: (share) => this.recordCompletedShare(share),
      dialer: reachingDialer({
        identity: () => this.#peerIdentity(),
        reversals,
        help: {
          reverse: async ({ groupId, name }, userId) => {
            await tracker.call("POST", filePath(groupId, name, "reversals"), { userId });
          },
          relay: ({ groupId, name }, userId) =>
            tracker.call<Answer<"relay">>("POST", filePath(groupId, name, "relays"), { userId }),
          openRelay: (relay, circuit, signal) => tracker.openRelay(relay, circuit, signal),
          punch: async ({ groupId, name }, userId) => {
            const { answer, localPort } = await tracker.callFresh<Answer<"punch">>(
              undefined,
              "POST",
              filePath(groupId, name, "punches"),
              { userId },
            );
            return { addr: answer.addr, localPort };
          },
          localAddress: tracker.localAddress,
        },
      }),
    });
  }

  get peerAddr(): string {
    return formatHostPort(this.#opts.host, this.#opts.port);
  }

  get userId(): string | undefined {
    return this.#login?.userId;
  }

  /** Prepares the state folder (owner-only) and starts the peer server on IP:PORT; a port in use is an error here, at start. */
  async start(): Promise<void> {
    for (const p of await prepareStateDir(this.#opts.stateDir)) {
      this.#opts.events.warn(`warning: cannot make the state folder owner-only: ${p}`);
    }
    await this.peerServer.listen(this.#opts.host, this.#opts.port, await this.#peerIdentity());
  }

  /** This client's key pair, made at first start in the state folder. */
  #peerIdentity(): Promise<PeerIdentity> {
    this.#identity ??= loadPeerIdentity(this.#opts.stateDir);
    return this.#identity;
  }

  #requireLogin(): Login {
    if (!this.#login) throw new GsError("UNAUTHORIZED", "not logged in");
    return this.#login;
  }

  async createUser(userId: string, password: string): Promise<string[]> {
    checkId("user id", userId);
    await this.tracker.call("POST", "/v1/users", { userId, password });
    return [`user ${userId} created; log in with: login ${userId} <passwd>`];
  }

  async login(userId: string, password: string): Promise<string[]> {
    checkId("user id", userId);
    if (this.#login) {
      throw new GsError("BAD_REQUEST", `already logged in as ${this.#login.userId}: logout first`);
    }
    const { token } = await this.tracker.call<Answer<"login">>("POST", "/v1/sessions", {
      userId,
      password,
      peerAddr: this.peerAddr,
      peerKey: (await this.#peerIdentity()).publicKey,
    });
    this.tracker.token = token;
    const { publicKey } = await this.tracker.call<Answer<"keys">>("GET", "/v1/keys");
    this.#publicKey = publicKeyFromPem(publicKey);
    const stateFile = new StateFile(this.#opts.stateDir, userId);
    const state = await stateFile.load();
    const heartbeat = setInterval(() => void this.#heartbeat(), HEARTBEAT_INTERVAL_MS);
    const signals = new SignalListener({
      tracker: this.tracker,
      shares: this.shares,
      peerServer: this.peerServer,
      identity: () => this.#peerIdentity(),
      warn: (line) => this.#opts.events.warn(line),
    });
    this.#login = { userId, state, stateFile, heartbeat, signals };
    const lines = [`logged in as ${userId}`];
    // resumed first: the re-share saves the state, and a save keeps only the downloads it sees
    const resumed = this.downloads.resumeAll(state.downloads);
    lines.push(...(await this.#reshare(state)));
    lines.push(...resumed);
    return lines;
  }

  /** Shares again what the user shared before, if each file is unchanged on disk. */
  async #reshare(state: UserState): Promise<string[]> {
    const lines: string[] = [];
    const kept: ShareState[] = [];
    let shared = 0;
    for (const s of state.shares) {
      const what = `[${s.groupId}] ${quoteWord(s.name)}`;
      let st: Awaited<ReturnType<typeof stat>> | undefined;
      try {
        st = await stat(s.path);
      } catch {
        st = undefined;
      }
      if (!st?.isFile() || st.size !== s.size || st.mtimeMs !== s.mtimeMs) {
        this.#opts.events.warn(
          `warning: not sharing ${what} again: ${s.path} ${st ? "changed since it was shared" : "is gone"}`,
        );
        continue;
      }
      // a state file from before file ids: the id comes from the piece hashes, so hash once
      s.fileId ??= await this.#fileIdOfPath(s);
      if (!s.fileId) {
        this.#opts.events.warn(`warning: not sharing ${what} again: ${s.path} changed since it was shared`);
        continue;
      }
      try {
        await this.tracker.call("POST", filePath(s.groupId, s.name, "shares"), { complete: true });
      } catch (err) {
        if (err instanceof GsError && err.code === "TRACKER_UNAVAILABLE") {
          // the tracker went away mid-login: keep it in the state, shared again at the next login
          this.#opts.events.warn(`warning: not sharing ${what} again yet: ${err.message}`);
          kept.push(s);
          continue;
        }
        this.#opts.events.warn(`warning: not sharing ${what} again: ${(err as Error).message}`);
        continue;
      }
      this.shares.add({
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
      });
      kept.push(s);
      shared++;
    }
    if (shared > 0) lines.push(`sharing again: ${shared} file${shared === 1 ? "" : "s"}`);
    state.shares = kept;
    await this.#saveState();
    return lines;
  }

  /** The file id of a share saved without one, if the file still has its whole-file SHA1. */
  async #fileIdOfPath(s: ShareState): Promise<string | undefined> {
    try {
      const h = await hashFile(s.path);
      return h.sha1 === s.sha1 && h.size === s.size ? fileIdOf(h.size, h.pieces) : undefined;
    } catch {
      return undefined;
    }
  }

  async #heartbeat(): Promise<void> {
    const l = this.#login;
    if (!l || l.ending) return;
    try {
      await this.tracker.call("POST", "/v1/heartbeat", {});
    } catch (err) {
      // our own logout or quit ends the session too: that is no news, and it saves the state itself
      if (err instanceof GsError && err.code === "UNAUTHORIZED" && this.#login === l && !l.ending) {
        this.#opts.events.warn(
          "warning: your session ended (this user logged in elsewhere, or the tracker did not hear from us for too long): logged out here",
        );
        await this.#endLogin();
      }
      // a tracker outage is retried at the next beat; commands report it themselves
    }
  }

  #saveState(): Promise<void> {
    const l = this.#login;
    if (!l) return Promise.resolve();
    l.state.downloads = this.downloads.snapshot();
    return l.stateFile.save(l.state).catch((err) => {
      this.#opts.events.warn(`warning: cannot save state to ${l.stateFile.path}: ${(err as Error).message}`);
    });
  }

  /**
   * Local side of logout: stop serving and downloading, keep the state on disk for
   * the next login. Once per login, however many ways of leaving meet here (a
   * quit, a signal, a heartbeat that hears the session ended): the state is saved
   * while the downloads are still listed, and only then is anything forgotten.
   */
  #endLogin(): Promise<number> {
    const l = this.#login;
    if (!l) return Promise.resolve(0);
    l.ending ??= (async () => {
      clearInterval(l.heartbeat);
      l.signals.stop();
      const n = this.shares.all().length;
      // stopped downloads stay in the snapshot, to resume at login; one that completes
      // meanwhile is recorded as a share (the login is still ours until the save)
      await this.downloads.stopAll();
      await this.#saveState();
      this.downloads.clear();
      this.shares.clear();
      this.#login = undefined;
      this.tracker.token = undefined;
      return n;
    })();
    return l.ending;
  }

  async logout(): Promise<string[]> {
    const l = this.#requireLogin();
    const token = this.tracker.token;
    const n = await this.#endLogin();
    const unheard = await this.#endSession(token);
    const lines = [`logged out ${l.userId}; stopped sharing ${n} file${n === 1 ? "" : "s"}`];
    if (unheard)
      lines.push(`warning: the tracker did not hear the logout (${unheard}); the session lapses by itself`);
    return lines;
  }

  async createGroup(groupId: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    await this.tracker.call("POST", "/v1/groups", { groupId });
    return [`group ${groupId} created; you own it`];
  }

  async joinGroup(groupId: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    await this.tracker.call("POST", groupPath(groupId, "requests"), {});
    return [`asked to join ${groupId}; the owner must accept the request`];
  }

  async leaveGroup(groupId: string): Promise<string[]> {
    const l = this.#requireLogin();
    checkId("group id", groupId);
    const r = await this.tracker.call<Answer<"leaveGroup">>("POST", groupPath(groupId, "leave"), {});
    if (r.withdrawn) return [`withdrew your request to join ${groupId}`];
    // leaving a group stops sharing its files
    this.shares.removeGroup(groupId);
    l.state.shares = l.state.shares.filter((s) => s.groupId !== groupId);
    this.downloads.cancelGroup(groupId);
    await this.#saveState();
    let line = `left group ${groupId}`;
    if (r.deleted) line += "; it had no other member and is deleted";
    else if (r.newOwner) line += `; ${r.newOwner} owns it now`;
    return [line];
  }

  async listRequests(groupId: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    const { requests } = await this.tracker.call<Answer<"listRequests">>(
      "GET",
      groupPath(groupId, "requests"),
    );
    if (requests.length === 0) return [`(no pending requests for ${groupId})`];
    return requests.map((r) => `${r.userId}  requested ${new Date(r.requestedAt).toISOString()}`);
  }

  async acceptRequest(groupId: string, userId: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    checkId("user id", userId);
    await this.tracker.call("POST", groupPath(groupId, `requests/${encodeURIComponent(userId)}/accept`), {});
    return [`${userId} is now a member of ${groupId}`];
  }

  async rejectRequest(groupId: string, userId: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    checkId("user id", userId);
    await this.tracker.call("POST", groupPath(groupId, `requests/${encodeURIComponent(userId)}/reject`), {});
    return [`rejected ${userId}'s request to join ${groupId}`];
  }

  /** The member's shares in the group end at once; tickets they hold lapse within TICKET_TTL_MS. */
  async removeMember(groupId: string, userId: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    checkId("user id", userId);
    await this.tracker.call("DELETE", groupPath(groupId, `members/${encodeURIComponent(userId)}`));
    return [`removed ${userId} from ${groupId}`];
  }

  async listGroups(prefix = ""): Promise<string[]> {
    this.#requireLogin();
    if (!ID_PREFIX_PATTERN.test(prefix)) {
      throw new GsError("INVALID_ID", "a group id prefix has up to 32 letters, digits, '_', '-' or '.'");
    }
    const query = prefix === "" ? "" : `?prefix=${encodeURIComponent(prefix)}`;
    const { groups, total } = await this.tracker.call<Answer<"listGroups">>("GET", `/v1/groups${query}`);
    if (total === 0) {
      return [
        prefix === "" ? "(no groups yet: create_group <group_id>)" : `(no group id starts with '${prefix}')`,
      ];
    }
    const lines = groups.map(
      (g) =>
        `${g.groupId}  owner=${g.owner}  members=${g.members}${g.role === "none" ? "" : `  you=${g.role}`}`,
    );
    if (total > groups.length) {
      lines.push(
        `(${groups.length} of ${total} groups${prefix ? ` starting with '${prefix}'` : ""}, yours first: list_groups <prefix> finds the rest)`,
      );
    }
    return lines;
  }

  async listFiles(groupId: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    const { files } = await this.tracker.call<Answer<"listFiles">>("GET", groupPath(groupId, "files"));
    if (files.length === 0) return [`(no files in ${groupId} yet: upload_file <file_path> ${groupId})`];
    return files.map((f) => {
      const avail =
        f.sharersOnline === 0
          ? "unavailable (no sharer online)"
          : `${f.sharersOnline} sharer${f.sharersOnline === 1 ? "" : "s"} online (${f.seedersOnline} complete)`;
      return `${quoteWord(f.name)}  ${formatBytes(f.size)} (${f.size} bytes)  ${avail}  sha1=${f.sha1}`;
    });
  }

  async uploadFile(filePath: string, groupId: string): Promise<string[]> {
    const l = this.#requireLogin();
    checkId("group id", groupId);
    const path = localPath(filePath);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new GsError(
        "BAD_REQUEST",
        `cannot read ${filePath}: ${code === "ENOENT" ? "no such file" : code}`,
      );
    }
    if (!st.isFile()) throw new GsError("BAD_REQUEST", `${filePath} is not a regular file`);
    const name = checkFileName(basename(path));
    // check membership before hashing a large file for nothing
    await this.tracker.call("GET", groupPath(groupId, "files"));
    let hashes: Awaited<ReturnType<typeof hashFile>>;
    try {
      hashes = await hashFile(path, (done, total) =>
        this.#opts.events.progress?.(`hashing ${name}`, done, total),
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new GsError("BAD_REQUEST", `cannot read ${filePath}: ${e.code ?? e.message}`);
    }
    await this.tracker.call("POST", groupPath(groupId, "files"), {
      name,
      size: hashes.size,
      sha1: hashes.sha1,
      pieces: hashes.pieces.toString("base64"),
    });
    const fileId = fileIdOf(hashes.size, hashes.pieces);
    this.shares.add({
      groupId,
      fileId,
      name,
      sha1: hashes.sha1,
      size: hashes.size,
      path,
      identity: hashes.identity,
      have: Bitfield.full(pieceCountOf(hashes.size)),
      mtimeMs: hashes.mtimeMs,
    });
    l.state.shares = l.state.shares.filter((s) => !(s.groupId === groupId && s.name === name));
    l.state.shares.push({
      groupId,
      name,
      path,
      sha1: hashes.sha1,
      fileId,
      size: hashes.size,
      mtimeMs: hashes.mtimeMs,
    });
    await this.#saveState();
    const pieces = pieceCountOf(hashes.size);
    return [
      `uploaded ${quoteWord(name)} to ${groupId}: ${formatBytes(hashes.size)}, ${pieces} piece${pieces === 1 ? "" : "s"}, sha1 ${hashes.sha1}; sharing it`,
    ];
  }

  async downloadFile(groupId: string, name: string, destination: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    checkFileName(name);
    await makeDestinationFolders(destination);
    const line = await this.downloads.start(groupId, name, localPath(destination));
    // on disk before we answer: a crash from here on resumes it at the next login
    await this.#saveState();
    return [line];
  }

  /** Logged in: this session's downloads. Before login: what each user's state file will resume. */
  async showDownloads(): Promise<string[]> {
    if (!this.#login) {
      const waiting = await savedDownloads(this.#opts.stateDir);
      if (waiting.length === 0) return ["(no downloads)"];
      return waiting.map(
        ({ userId, d }) =>
          `[D] [${d.groupId}] ${quoteWord(d.name)}  resumes when ${userId} logs in  -> ${d.target}`,
      );
    }
    const list = this.downloads.list();
    // a failed download is told once, then leaves the list
    this.downloads.dropEnded();
    if (list.length === 0) return ["(no downloads)"];
    return list.map(formatDownload);
  }

  /** Stops a download in any phase, forgets it (no resume at the next login) and deletes its partial file. */
  async cancelDownload(groupId: string, name: string): Promise<string[]> {
    this.#requireLogin();
    checkId("group id", groupId);
    checkFileName(name);
    const partPath = await this.downloads.forget(groupId, name);
    if (partPath === undefined) {
      throw new GsError(
        "BAD_REQUEST",
        `no download of [${groupId}] ${quoteWord(name)} to cancel: see show_downloads`,
      );
    }
    await this.#saveState();
    return [`cancelled the download of [${groupId}] ${quoteWord(name)}; deleted ${partPath}`];
  }

  /** Group ids that start with `prefix`, for completion (yours first, as list_groups shows them). */
  async groupIds(prefix: string): Promise<string[]> {
    if (!this.#login || !ID_PREFIX_PATTERN.test(prefix)) return [];
    const query = prefix === "" ? "" : `?prefix=${encodeURIComponent(prefix)}`;
    const { groups } = await this.tracker.call<Answer<"listGroups">>("GET", `/v1/groups${query}`);
    return groups.map((g) => g.groupId);
  }

  /** The group's file names for completion. */
  async fileNames(groupId: string): Promise<string[]> {
    if (!this.#login) return [];
    const { files } = await this.tracker.call<Answer<"listFiles">>("GET", groupPath(groupId, "files"));
    return files.map((f) => f.name);
  }

  async stopShare(groupId: string, name: string): Promise<string[]> {
    const l = this.#requireLogin();
    checkId("group id", groupId);
    checkFileName(name);
    await this.tracker.call("DELETE", filePath(groupId, name, "shares"));
    const f = this.shares.find(groupId, name);
    if (f) this.shares.remove(groupId, f.fileId);
    l.state.shares = l.state.shares.filter((s) => !(s.groupId === groupId && s.name === name));
    this.downloads.cancel(groupId, name);
    await this.#saveState();
    return [`stopped sharing ${quoteWord(name)} in ${groupId}`];
  }

  /** What this client serves, with bytes served: one line per shared file. */
  showShares(): string[] {
    this.#requireLogin();
    const all = this.shares.all();
    if (all.length === 0) return ["(not sharing anything)"];
    const serving = this.peerServer.connectionsByFile();
    return all.map((f) => {
      const by = serving.get(f);
      const kinds = by ? Object.entries(by).filter(([, n]) => n > 0) : [];
      const peers = kinds.length > 0 ? `  serving ${kinds.map(([k, n]) => `${n} ${k}`).join(", ")}` : "";
      return `[${f.groupId}] ${quoteWord(f.name)}  ${f.have.count}/${f.pieceCount} pieces  served=${formatBytesExact(f.servedBytes)}${peers}  ${f.path}`;
    });
  }

  /** Called by the download manager when a download completes: it becomes a share that survives logout. */
  recordCompletedShare(s: ShareState): void {
    const l = this.#login;
    if (!l) return;
    l.state.shares = l.state.shares.filter((x) => !(x.groupId === s.groupId && x.name === s.name));
    l.state.shares.push(s);
    void this.#saveState();
  }

  /** At the end of a script: wait for downloads in flight (each bounded by its own retry schedule). */
  whenDownloadsDone(): Promise<void> {
    return this.downloads.whenIdle();
  }

  /** Ends the session at the tracker (peers stop being handed our address); the reason it was not heard, if not. */
  async #endSession(token: string | undefined): Promise<string | undefined> {
    if (!token) return undefined;
    this.tracker.token = token;
    try {
      await this.tracker.call("DELETE", "/v1/sessions");
      return undefined;
    } catch (err) {
      return (err as Error).message;
    } finally {
      this.tracker.token = undefined;
    }
  }

  #closing: Promise<void> | undefined;

  /**
   * quit, exit, the end of input, a signal: save the state first (downloads and
   * shares resume at the next login), then go offline at the tracker and stop
   * serving. Safe to call from any number of places at once: it runs once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const token = this.tracker.token;
      await this.#endLogin();
      await this.#endSession(token);
      await this.peerServer.close();
      this.tracker.close();
    })();
    return this.#closing;
  }
}

/** The host as a local address to connect from, unless it is a wildcard (0.0.0.0, ::). */
function specificIp(host: string): string | undefined {
  return isIP(host) !== 0 && host !== "0.0.0.0" && host !== "::" ? host : undefined;
}

export function formatDownload(d: DownloadStatus): string {
  const head = `[${d.state === "complete" ? "C" : "D"}] [${d.groupId}] ${quoteWord(d.name)}`;
  if (d.state === "complete") return head;
  return `${head}  ${d.detail}  -> ${d.target}`;
}
