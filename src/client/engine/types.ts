/**
 * What the engine answers and tells, as data: the one contract between the engine
 * (tracker session, shares, downloads) and its front ends. The shell (cli/format.ts)
 * turns these into its lines; a web UI or a JSON API renders the same values. Nothing
 * here is text for a terminal: names and ids are as the tracker's contract checked
 * them (shared/api.ts), sizes are bytes, times are milliseconds since the epoch or
 * durations in milliseconds unless a name says seconds.
 *
 * Every value is plain JSON (no classes, no Maps, no undefined inside arrays), so an
 * API can send it as it is.
 */
import type { ErrorCode } from "../../shared/errors.js";
import type { PathKind } from "../download/dialer.js";
import type { DownloadRef, DownloadWarning } from "../download/events.js";
import type { DownloadPhase } from "../download/progress.js";
import type { SignalWarning } from "../reach/signalListener.js";
import type { ServingWarning } from "../serving/peerServer.js";

export type { DownloadRef, DownloadWarning } from "../download/events.js";
export type { PathKind } from "../download/dialer.js";
export type { DownloadPhase } from "../download/progress.js";

/** A failure as a value: a code of the registry (shared/errors.ts), its message and what to do. */
export interface EngineError {
  code: ErrorCode;
  message: string;
  hint: string;
}

/** Counts by how a connection was made. */
export type ByPath = Record<PathKind, number>;

// ---- accounts and groups -------------------------------------------------------

export type Role = "owner" | "member" | "pending" | "none";

export interface GroupView {
  groupId: string;
  owner: string;
  /** members, the owner included */
  members: number;
  /** the logged-in user's place in the group */
  role: Role;
}

/** list_groups: yours first, then others'; `total` may exceed `groups.length` (LIST_GROUPS_LIMIT). */
export interface GroupList {
  /** the prefix asked for ("" for all) */
  prefix: string;
  groups: GroupView[];
  total: number;
}

export interface RequestView {
  groupId: string;
  userId: string;
  /** when the request was made, ms since the epoch */
  requestedAt: number;
}

export interface RequestList {
  groupId: string;
  requests: RequestView[];
}

export interface GroupCreated {
  groupId: string;
  /** you */
  owner: string;
}

/** join_group: the request is made; the owner must accept it. */
export interface JoinRequested {
  groupId: string;
}

/** reject_request: the request is gone. */
export interface RequestRejected {
  groupId: string;
  userId: string;
}

/** One member of a group (accept_request made them one; remove_member removed them). */
export interface MemberView {
  groupId: string;
  userId: string;
}

/** list_members: the owner first, then the members in the order they joined. */
export interface MemberList {
  groupId: string;
  members: { userId: string; role: "owner" | "member"; joinedAt: number }[];
}

/** leave_group: either a request withdrawn, or a group left (and perhaps deleted or handed on). */
export type LeaveResult =
  | { groupId: string; withdrawn: true }
  | { groupId: string; withdrawn: false; deleted: boolean; newOwner?: string };

// ---- sessions ------------------------------------------------------------------

export interface UserCreated {
  userId: string;
}

/** A download a login resumed from the state file. */
export interface ResumedDownload {
  groupId: string;
  name: string;
  target: string;
}

export interface LoginResult {
  userId: string;
  /** files shared again from the state file (unchanged on disk); skipped ones came as warnings */
  reshared: number;
  resumed: ResumedDownload[];
}

export interface LogoutResult {
  userId: string;
  /** shares this client stopped serving */
  stoppedSharing: number;
  /** why the tracker did not hear the logout, when it did not (the session then lapses by itself) */
  unheard?: string;
}

// ---- files, shares, downloads --------------------------------------------------

/** A file offered in a group, as the tracker lists it. */
export interface FileView {
  groupId: string;
  name: string;
  size: number;
  sha1: string;
  fileId: string;
  /** members sharing it now, and how many of them have all of it */
  sharersOnline: number;
  seedersOnline: number;
}

export interface FileList {
  groupId: string;
  files: FileView[];
}

/** upload_file: the file was hashed, offered to the group, and is shared from `path`. */
export interface UploadResult {
  groupId: string;
  name: string;
  path: string;
  size: number;
  pieceCount: number;
  sha1: string;
  fileId: string;
}

/** What this client serves: one per shared file (complete, or a download's partial file). */
export interface ShareView {
  groupId: string;
  name: string;
  /** where the bytes are read from (a partial file while downloading) */
  path: string;
  size: number;
  sha1: string;
  fileId: string;
  piecesHave: number;
  pieceCount: number;
  /** piece bytes sent to peers since it was shared */
  servedBytes: number;
  /** connections serving it now, by how they were made */
  serving: ByPath;
}

export interface StopShareResult {
  groupId: string;
  name: string;
}

/** One sharer a download is linked to. */
export interface PeerView {
  userId: string;
  /** IP:PORT as the tracker listed it */
  addr: string;
  /** how the link was made; undefined while it is being made */
  path?: PathKind;
  /** piece bytes received on this link */
  bytes: number;
}

/** A download, at one moment (show_downloads; the download-progress event). */
export interface DownloadView {
  groupId: string;
  name: string;
  /** the file it becomes */
  target: string;
  state: DownloadPhase;
  /** 0 until the tracker answered */
  size: number;
  pieceCount: number;
  piecesDone: number;
  bytesDone: number;
  /** 0..100 */
  percent: number;
  /** over the last few seconds */
  speedBps: number;
  /** at the current speed; null while nothing arrives */
  etaSeconds: number | null;
  /** verified piece bytes since this run began (a resume counts from 0), and the time spent fetching them */
  bytesThisRun: number;
  fetchingMs: number;
  peers: PeerView[];
  /** open links by how they were made */
  peersByPath: ByPath;
  /** bytes this run by the kind of link they came on */
  receivedByPath: ByPath;
  /** while waiting for a sharer: tries made and when the next one is */
  retry?: { tries: number; nextTryMs: number };
  /** why it failed (state "failed") */
  error?: EngineError;
}

/** Before login: a download a user's state file will resume when that user logs in. */
export interface SavedDownloadView {
  userId: string;
  groupId: string;
  name: string;
  target: string;
}

/** show_downloads: this session's downloads once logged in; before, what each user's state file will resume. */
export type DownloadList =
  | { loggedIn: true; downloads: DownloadView[] }
  | { loggedIn: false; saved: SavedDownloadView[] };

/** download_file: accepted, running in the background (progress comes as events and in show_downloads). */
export interface DownloadStarted {
  groupId: string;
  name: string;
  target: string;
}

export interface DownloadCancelled {
  groupId: string;
  name: string;
  /** the partial file that was deleted */
  partPath: string;
}

// ---- events --------------------------------------------------------------------

/** Warnings that are no download's: the session, the state folder, serving peers, tracker signals. */
export type EngineWarning =
  | ServingWarning
  | SignalWarning
  /** a remembered login that was not used (its file is unsafe, or made at other trackers): `message` says what to do */
  | { kind: "remembered-login"; message: string }
  /** the state folder or a file in it could not be made owner-only: `problem` is "<path>: <errno code>" */
  | { kind: "state-dir-open"; problem: string }
  | { kind: "state-save-failed"; path: string; message: string }
  | {
      kind: "reshare-skipped";
      groupId: string;
      name: string;
      path: string;
      /** the file changed or is gone; the tracker refused (message); or no tracker answered (kept for the next login) */
      why: "changed" | "gone" | "refused" | "unavailable";
      message?: string;
    }
  /** the tracker ended the session (a login elsewhere, or it did not hear from us): logged out here */
  | { kind: "session-ended" };

/** Everything the engine tells without being asked. */
export type EngineEvent =
  /** at most once a second per download while pieces arrive, and at each change of its state */
  | { type: "download-progress"; download: DownloadView }
  /** the file is under its final name and shared; the view's figures are the run's (bytesThisRun, fetchingMs, receivedByPath) */
  | { type: "download-complete"; download: DownloadView }
  /** the partial file is deleted; the view's `error` says why */
  | { type: "download-failed"; download: DownloadView; error: EngineError }
  /** a download worked around a bad or unreachable peer, or a tracker that did not hear it */
  | { type: "download-warning"; download: DownloadRef; warning: DownloadWarning }
  | { type: "warning"; warning: EngineWarning }
  /** progress of a long command (hashing a file to upload it) */
  | { type: "hashing"; name: string; done: number; total: number }
  | { type: "logged-in"; userId: string }
  | { type: "logged-out"; userId: string; reason: "logout" | "quit" | "session-ended" }
  /**
   * A request arrived for a group you own / you became a member of a group you asked
   * to join. The tracker pushes neither: the session asks for them at each heartbeat,
   * and only while a front end has asked it to (Engine.watchMembership).
   */
  | { type: "join-request"; request: RequestView }
  | { type: "request-accepted"; groupId: string };

export type EngineEventType = EngineEvent["type"];
export type EventOf<T extends EngineEventType> = Extract<EngineEvent, { type: T }>;

// ---- speed limits --------------------------------------------------------------

/** Which way bytes go: "up" is what this client sends, "down" what it receives. */
export type LimitDirection = "up" | "down";

/** A limit in bytes a second: null is no limit, 0 is paused. */
export type LimitRate = number | null;

/**
 * show_limits: client-wide, then each group's and download's limit that is set. Every
 * byte of a peer link is counted as it crosses the socket, TLS included.
 */
export interface LimitsView {
  up: LimitRate;
  down: LimitRate;
  groups: { groupId: string; up: LimitRate; down: LimitRate }[];
  downloads: { groupId: string; name: string; down: LimitRate }[];
}

/** set_limit: the limit now in force, and what it applies to (client-wide with no group). */
export interface LimitSet {
  direction: LimitDirection;
  rate: LimitRate;
  groupId: string | null;
  name: string | null;
}
