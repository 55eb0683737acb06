import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { Bitfield } from "../../shared/bitfield.js";
import { ID_PREFIX_PATTERN } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { fileIdOf } from "../../shared/fileId.js";
import { checkFileName, checkId } from "../../shared/ids.js";
import type { DownloadManager } from "../download/manager.js";
import type { SpeedLimits } from "../limits/limits.js";
import { parseRate } from "../limits/rate.js";
import { hashFile } from "../hashing/hasher.js";
import { localPath, makeDestinationFolders } from "../paths.js";
import type { PeerServer } from "../serving/peerServer.js";
import { pieceCountOf, type ShareRegistry } from "../serving/shares.js";
import { savedDownloads } from "../state.js";
import { quoteWord } from "../tokenize.js";
import type { TrackerClient } from "../tracker/trackerClient.js";
import type { EngineEmitter } from "./emitter.js";
import type { LoggedIn, Session } from "./session.js";
import type {
  DownloadCancelled,
  DownloadList,
  DownloadStarted,
  DownloadsChanged,
  DownloadView,
  FileList,
  LimitDirection,
  LimitSet,
  LimitsView,
  GroupCreated,
  GroupList,
  JoinRequested,
  LeaveResult,
  LoginResult,
  LogoutResult,
  MemberList,
  MemberView,
  QueueSettings,
  RequestList,
  RequestRejected,
  ShareView,
  StopShareResult,
  UploadResult,
  UserCreated,
} from "./types.js";
import { downloadView, shareViews } from "./views.js";

/** The engine's parts, as its operations use them. */
export interface EngineParts {
  tracker: TrackerClient;
  shares: ShareRegistry;
  peerServer: PeerServer;
  downloads: DownloadManager;
  session: Session;
  events: EngineEmitter;
  stateDir: string;
  limits: SpeedLimits;
}

/** What an argument is: ids and file names are checked before an operation runs; the rest are free text. */
export type ArgKind =
  | "user_id"
  | "passwd"
  | "group_id"
  | "file_name"
  | "file_path"
  | "destination_path"
  | "prefix"
  /** whole numbers, 1 or more: how many, and a place in the queue (1 = first) */
  | "count"
  | "position"
  | "direction"
  | "rate";

/**
 * An argument checked by its kind: the value the operation gets (a file name
 * NFC-normalized), or a GsError that says the rule (INVALID_ID, INVALID_FILE_NAME).
 */
export function checkArg(kind: ArgKind, value: string): string {
  switch (kind) {
    case "user_id":
      return checkId("user id", value);
    case "group_id":
      return checkId("group id", value);
    case "file_name":
      return checkFileName(value);
    case "prefix":
      if (!ID_PREFIX_PATTERN.test(value))
        throw new GsError("INVALID_ID", "a group id prefix has up to 32 letters, digits, '_', '-' or '.'");
      return value;
    case "direction":
      if (value !== "up" && value !== "down")
        throw new GsError("BAD_REQUEST", `'${value}': a limit's direction is up or down`);
      return value;
    case "rate":
      parseRate(value);
      return value;
    case "count":
    case "position":
      if (!/^[0-9]{1,6}$/.test(value) || Number(value) < 1)
        throw new GsError("BAD_REQUEST", `'${value}' is not a whole number from 1 up`);
      return value;
    case "passwd":
    case "file_path":
    case "destination_path":
      return value;
  }
}

type Values<A extends readonly ArgKind[]> = { -readonly [I in keyof A]: string };
type OptionalValues<O extends readonly ArgKind[]> = { -readonly [I in keyof O]?: string };

/** One operation: its arguments, whether it needs a login, and what it does with them checked. */
export interface Operation<A extends readonly ArgKind[], O extends readonly ArgKind[], L extends boolean, R> {
  readonly args: A;
  /** arguments that may follow `args` */
  readonly optional: O;
  readonly login: L;
  run(
    e: EngineParts,
    login: L extends true ? LoggedIn : LoggedIn | undefined,
    args: [...Values<A>, ...OptionalValues<O>],
  ): Promise<R> | R;
}

function loggedIn<const A extends readonly ArgKind[], R, const O extends readonly ArgKind[] = []>(
  args: A,
  run: Operation<A, O, true, R>["run"],
  optional: O = [] as unknown as O,
): Operation<A, O, true, R> {
  return { args, optional, login: true, run };
}

function anyone<const A extends readonly ArgKind[], R, const O extends readonly ArgKind[] = []>(
  args: A,
  run: Operation<A, O, false, R>["run"],
  optional: O = [] as unknown as O,
): Operation<A, O, false, R> {
  return { args, optional, login: false, run };
}

/**
 * Every operation a front end can ask of the engine, each declared once: the shell's
 * commands (cli/commands.ts) and an API name these, and Engine.call checks the login
 * and the arguments from here, once, before `run`.
 */
export const OPERATIONS = {
  createUser: anyone(["user_id", "passwd"], async (e, _l, [userId, password]): Promise<UserCreated> => {
    await e.tracker.call("createUser", { userId, password });
    return { userId };
  }),

  login: anyone(
    ["user_id", "passwd"],
    (e, _l, [userId, password]): Promise<LoginResult> => e.session.login(userId, password),
  ),

  rememberLogin: anyone(
    ["user_id", "passwd"],
    (e, _l, [userId, password]): Promise<LoginResult> => e.session.login(userId, password, true),
  ),

  logout: loggedIn([], (e, l): Promise<LogoutResult> => e.session.logout(l)),

  createGroup: loggedIn(["group_id"], async (e, _l, [groupId]): Promise<GroupCreated> => {
    const { owner } = await e.tracker.call("createGroup", { groupId });
    return { groupId, owner };
  }),

  joinGroup: loggedIn(["group_id"], async (e, _l, [groupId]): Promise<JoinRequested> => {
    await e.tracker.call("joinGroup", { groupId }, {});
    return { groupId };
  }),

  /** Leaving a group stops sharing its files and downloading from it. */
  leaveGroup: loggedIn(["group_id"], async (e, l, [groupId]): Promise<LeaveResult> => {
    const r = await e.tracker.call("leaveGroup", { groupId }, {});
    if (r.withdrawn) return { groupId, withdrawn: true };
    e.shares.removeGroup(groupId);
    e.session.forget(l, groupId);
    e.downloads.cancelGroup(groupId);
    await e.session.save();
    return { groupId, withdrawn: false, deleted: r.deleted, ...(r.newOwner && { newOwner: r.newOwner }) };
  }),

  listRequests: loggedIn(["group_id"], async (e, _l, [groupId]): Promise<RequestList> => {
    const { requests } = await e.tracker.call("listRequests", { groupId });
    return { groupId, requests: requests.map((r) => ({ groupId, ...r })) };
  }),

  listMembers: loggedIn(["group_id"], async (e, _l, [groupId]): Promise<MemberList> => {
    const { members } = await e.tracker.call("listMembers", { groupId });
    return { groupId, members };
  }),

  acceptRequest: loggedIn(["group_id", "user_id"], async (e, _l, [groupId, userId]): Promise<MemberView> => {
    await e.tracker.call("acceptRequest", { groupId, userId }, {});
    return { groupId, userId };
  }),

  rejectRequest: loggedIn(
    ["group_id", "user_id"],
    async (e, _l, [groupId, userId]): Promise<RequestRejected> => {
      await e.tracker.call("rejectRequest", { groupId, userId }, {});
      return { groupId, userId };
    },
  ),

  /** The member's shares in the group end at once; tickets they hold lapse within TICKET_TTL_MS. */
  removeMember: loggedIn(["group_id", "user_id"], async (e, _l, [groupId, userId]): Promise<MemberView> => {
    await e.tracker.call("removeMember", { groupId, userId });
    return { groupId, userId };
  }),

  listGroups: loggedIn(
    [],
    async (e, _l, [prefix = ""]): Promise<GroupList> => {
      const { groups, total } = await e.tracker.call("listGroups", { prefix });
      return { prefix, groups, total };
    },
    ["prefix"],
  ),

  listFiles: loggedIn(["group_id"], async (e, _l, [groupId]): Promise<FileList> => {
    const { files } = await e.tracker.call("listFiles", { groupId });
    return { groupId, files: files.map((f) => ({ groupId, ...f })) };
  }),

  uploadFile: loggedIn(["file_path", "group_id"], (e, l, [filePath, groupId]) =>
    upload(e, l, filePath, groupId),
  ),

  downloadFile: loggedIn(
    ["group_id", "file_name", "destination_path"],
    async (e, _l, [groupId, name, destination]): Promise<DownloadStarted> => {
      await makeDestinationFolders(destination);
      const started = await e.downloads.start(groupId, name, localPath(destination));
      // on disk before we answer: a crash from here on resumes it at the next login
      await e.session.save();
      return started;
    },
  ),

  /** Stops a download in any phase, forgets it (no resume at the next login) and deletes its partial file. */
  cancelDownload: loggedIn(
    ["group_id", "file_name"],
    async (e, _l, [groupId, name]): Promise<DownloadCancelled> => {
      const partPath = await e.downloads.forget(groupId, name);
      e.limits.forget({ groupId, name });
      if (partPath === undefined) {
        throw new GsError(
          "BAD_REQUEST",
          `no download of [${groupId}] ${quoteWord(name)} to cancel: see show_downloads`,
        );
      }
      await e.session.save();
      return { groupId, name, partPath };
    },
  ),

  /** Stops fetching; its verified pieces stay shared. Saved paused: it stays paused across logins. */
  pauseDownload: pausing(true),

  /** Goes on from its verified pieces, or waits in the queue if every active place is taken. */
  resumeDownload: pausing(false),

  pauseAll: pausingAll(true),

  resumeAll: pausingAll(false),

  /** How many downloads fetch at once; the others wait in the queue's order. */
  setMaxActive: loggedIn(["count"], async (e, _l, [n]): Promise<QueueSettings> => {
    e.downloads.setMaxActive(Number(n));
    await e.session.save();
    return { maxActive: e.downloads.maxActive, downloads: e.downloads.list().map(downloadView) };
  }),

  /** Puts a download at a place in the queue (1 = first): the first ones fetch. */
  moveDownload: loggedIn(
    ["group_id", "file_name", "position"],
    async (e, _l, [groupId, name, position]): Promise<DownloadView> => {
      const d = e.downloads.move(groupId, name, Number(position));
      await e.session.save();
      return downloadView(d);
    },
  ),

  /** A failed or completed download is told once, then leaves the list. */
  showDownloads: anyone([], async (e, l): Promise<DownloadList> => {
    if (!l) {
      const saved = await savedDownloads(e.stateDir);
      return {
        loggedIn: false,
        saved: saved.map(({ userId, d }) => ({ userId, groupId: d.groupId, name: d.name, target: d.target })),
      };
    }
    const downloads = e.downloads.list().map(downloadView);
    e.downloads.dropEnded();
    return { loggedIn: true, downloads };
  }),

  stopShare: loggedIn(["group_id", "file_name"], async (e, l, [groupId, name]): Promise<StopShareResult> => {
    await e.tracker.call("stopShare", { groupId, name });
    const f = e.shares.find(groupId, name);
    if (f) e.shares.remove(groupId, f.fileId);
    e.session.forget(l, groupId, name);
    e.downloads.cancel(groupId, name);
    e.limits.forget({ groupId, name });
    await e.session.save();
    return { groupId, name };
  }),

  /** What this client serves, with bytes served. */
  showShares: loggedIn([], (e): ShareView[] => shareViews(e.shares.all(), e.peerServer)),

  /**
   * A speed limit, in force at once on every link: client-wide, a group's, or one
   * download's (down only). `unlimited` removes it, 0 pauses. Saved with the login's state.
   */
  setLimit: anyone(
    ["direction", "rate"],
    async (e, _l, [direction, rateText, groupId, name]): Promise<LimitSet> => {
      const rate = parseRate(rateText);
      // an ended download's limit would be kept for nothing (it is forgotten as it ends)
      const going = (d: { groupId: string; name: string; phase: string }) =>
        d.groupId === groupId && d.name === name && d.phase !== "complete" && d.phase !== "failed";
      if (name !== undefined && !e.downloads.list().some(going))
        throw new GsError(
          "BAD_REQUEST",
          `no download of [${groupId}] ${quoteWord(name)} under way: see show_downloads`,
        );
      e.limits.set(direction as LimitDirection, rate, groupId, name);
      await e.session.save(); // kept with the login's state, in force again at its next login
      return {
        direction: direction as LimitDirection,
        rate: rate ?? null,
        groupId: groupId ?? null,
        name: name ?? null,
      };
    },
    ["group_id", "file_name"],
  ),

  /** The speed limits in force. */
  showLimits: anyone([], (e): LimitsView => {
    const s = e.limits.settings();
    const n = (r: number | undefined) => r ?? null;
    return {
      up: n(s.up),
      down: n(s.down),
      groups: s.groups.map((g) => ({ groupId: g.groupId, up: n(g.up), down: n(g.down) })),
      downloads: s.downloads.map((d) => ({ groupId: d.groupId, name: d.name, down: n(d.down) })),
    };
  }),
} as const;

export type OpName = keyof typeof OPERATIONS;
type OpOf<K extends OpName> = (typeof OPERATIONS)[K];
/** What operation K takes: its arguments, as text, in order. */
export type OpArgs<K extends OpName> = Parameters<OpOf<K>["run"]>[2];
/** What operation K answers. */
export type OpResult<K extends OpName> = Awaited<ReturnType<OpOf<K>["run"]>>;

/** pause_download (true), resume_download (false): the download's view, saved. */
function pausing(paused: boolean) {
  return loggedIn(["group_id", "file_name"], async (e, _l, [groupId, name]): Promise<DownloadView> => {
    const d = e.downloads.pause(groupId, name, paused);
    await e.session.save();
    return downloadView(d);
  });
}

/** pause_all (true), resume_all (false): the downloads changed, saved. */
function pausingAll(paused: boolean) {
  return loggedIn([], async (e): Promise<DownloadsChanged> => {
    const changed = e.downloads.pauseAll(paused);
    await e.session.save();
    return { downloads: changed.map(downloadView) };
  });
}

/** upload_file: hash the file, offer it to the group, share it from where it is. */
async function upload(e: EngineParts, l: LoggedIn, filePath: string, groupId: string): Promise<UploadResult> {
  const path = localPath(filePath);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GsError("BAD_REQUEST", `cannot read ${filePath}: ${code === "ENOENT" ? "no such file" : code}`);
  }
  if (!st.isFile()) throw new GsError("BAD_REQUEST", `${filePath} is not a regular file`);
  const name = checkFileName(basename(path));
  // check membership before hashing a large file for nothing
  await e.tracker.call("listFiles", { groupId });
  let hashes: Awaited<ReturnType<typeof hashFile>>;
  try {
    hashes = await hashFile(path, (done, total) => e.events.emit({ type: "hashing", name, done, total }));
  } catch (err) {
    if (err instanceof GsError) throw err;
    const x = err as NodeJS.ErrnoException;
    throw new GsError("BAD_REQUEST", `cannot read ${filePath}: ${x.code ?? x.message}`);
  }
  await e.tracker.call(
    "upload",
    { groupId },
    { name, size: hashes.size, sha1: hashes.sha1, pieces: hashes.pieces.toString("base64") },
  );
  const fileId = fileIdOf(hashes.size, hashes.pieces);
  const pieceCount = pieceCountOf(hashes.size);
  e.shares.add({
    groupId,
    fileId,
    name,
    sha1: hashes.sha1,
    size: hashes.size,
    path,
    identity: hashes.identity,
    have: Bitfield.full(pieceCount),
    mtimeMs: hashes.mtimeMs,
  });
  await e.session.remember(l, {
    groupId,
    name,
    path,
    sha1: hashes.sha1,
    fileId,
    size: hashes.size,
    mtimeMs: hashes.mtimeMs,
  });
  return { groupId, name, path, size: hashes.size, pieceCount, sha1: hashes.sha1, fileId };
}
