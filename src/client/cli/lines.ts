import type { DownloadRef, DownloadWarning } from "../download/events.js";
import type { DownloadList } from "../engine/types.js";
import type {
  DownloadCancelled,
  DownloadStarted,
  DownloadView,
  EngineEvent,
  EngineWarning,
  FileList,
  GroupCreated,
  GroupList,
  JoinRequested,
  LeaveResult,
  LimitRate,
  LimitSet,
  LimitsView,
  LoginResult,
  LogoutResult,
  MemberList,
  MemberView,
  RequestList,
  RequestRejected,
  ShareView,
  StopShareResult,
  UploadResult,
  UserCreated,
} from "../engine/types.js";
import { printable } from "../../shared/ids.js";
import { formatRate as formatLimit } from "../limits/rate.js";
import { quoteWord } from "../tokenize.js";
import { formatBytes, formatBytesExact, formatEta, formatRate } from "./format.js";

// The shell's words for the engine's results and events: every line it prints
// about them is made here, from the same values a web UI or an API shows.

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `[group] name`, the name quoted when it needs to be (spaces, quotes). */
function fileRef(groupId: string, name: string): string {
  return `[${groupId}] ${quoteWord(name)}`;
}

export function userCreatedLines(r: UserCreated): string[] {
  return [`user ${r.userId} created; log in with: login ${r.userId} <passwd>`];
}

export function loginLines(r: LoginResult): string[] {
  const lines = [`logged in as ${r.userId}`];
  if (r.reshared > 0) lines.push(`sharing again: ${plural(r.reshared, "file")}`);
  for (const d of r.resumed) lines.push(`resuming download of ${fileRef(d.groupId, d.name)} to ${d.target}`);
  return lines;
}

export function logoutLines(r: LogoutResult): string[] {
  const lines = [`logged out ${r.userId}; stopped sharing ${plural(r.stoppedSharing, "file")}`];
  if (r.unheard !== undefined)
    lines.push(`warning: the tracker did not hear the logout (${r.unheard}); the session lapses by itself`);
  return lines;
}

export function groupCreatedLines(r: GroupCreated): string[] {
  return [`group ${r.groupId} created; you own it`];
}

export function joinRequestedLines(r: JoinRequested): string[] {
  return [`asked to join ${r.groupId}; the owner must accept the request`];
}

export function leaveLines(r: LeaveResult): string[] {
  if (r.withdrawn) return [`withdrew your request to join ${r.groupId}`];
  let line = `left group ${r.groupId}`;
  if (r.deleted) line += "; it had no other member and is deleted";
  else if (r.newOwner) line += `; ${r.newOwner} owns it now`;
  return [line];
}

export function requestLines(r: RequestList): string[] {
  if (r.requests.length === 0) return [`(no pending requests for ${r.groupId})`];
  return r.requests.map((q) => `${q.userId}  requested ${new Date(q.requestedAt).toISOString()}`);
}

export function memberLines(r: MemberList): string[] {
  return r.members.map((m) => `${m.userId}  ${m.role}  joined ${new Date(m.joinedAt).toISOString()}`);
}

export function acceptedLines(r: MemberView): string[] {
  return [`${r.userId} is now a member of ${r.groupId}`];
}

export function rejectedLines(r: RequestRejected): string[] {
  return [`rejected ${r.userId}'s request to join ${r.groupId}`];
}

export function removedLines(r: MemberView): string[] {
  return [`removed ${r.userId} from ${r.groupId}`];
}

export function groupLines({ prefix, groups, total }: GroupList): string[] {
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

export function fileLines({ groupId, files }: FileList): string[] {
  if (files.length === 0) return [`(no files in ${groupId} yet: upload_file <file_path> ${groupId})`];
  return files.map((f) => {
    const avail =
      f.sharersOnline === 0
        ? "unavailable (no sharer online)"
        : `${plural(f.sharersOnline, "sharer")} online (${f.seedersOnline} complete)`;
    return `${quoteWord(f.name)}  ${formatBytes(f.size)} (${f.size} bytes)  ${avail}  sha1=${f.sha1}`;
  });
}

export function uploadLines(r: UploadResult): string[] {
  return [
    `uploaded ${quoteWord(r.name)} to ${r.groupId}: ${formatBytes(r.size)}, ${plural(r.pieceCount, "piece")}, sha1 ${r.sha1}; sharing it`,
  ];
}

export function downloadStartedLines(r: DownloadStarted): string[] {
  return [
    `downloading ${fileRef(r.groupId, r.name)} to ${r.target} in the background (show_downloads for progress)`,
  ];
}

export function cancelledLines(r: DownloadCancelled): string[] {
  return [`cancelled the download of ${fileRef(r.groupId, r.name)}; deleted ${r.partPath}`];
}

export function stoppedShareLines(r: StopShareResult): string[] {
  return [`stopped sharing ${quoteWord(r.name)} in ${r.groupId}`];
}

/** One line per shared file: pieces, bytes served, connections serving it now, where it is. */
export function shareLines(all: ShareView[]): string[] {
  if (all.length === 0) return ["(not sharing anything)"];
  return all.map((f) => {
    const kinds = Object.entries(f.serving).filter(([, n]) => n > 0);
    const peers = kinds.length > 0 ? `  serving ${kinds.map(([k, n]) => `${n} ${k}`).join(", ")}` : "";
    return `${fileRef(f.groupId, f.name)}  ${f.piecesHave}/${f.pieceCount} pieces  served=${formatBytesExact(f.servedBytes)}${peers}  ${f.path}`;
  });
}

export function downloadListLines(r: DownloadList): string[] {
  if (!r.loggedIn) {
    if (r.saved.length === 0) return ["(no downloads)"];
    return r.saved.map(
      (d) => `[D] ${fileRef(d.groupId, d.name)}  resumes when ${d.userId} logs in  -> ${d.target}`,
    );
  }
  if (r.downloads.length === 0) return ["(no downloads)"];
  return r.downloads.map(downloadLine);
}

/** show_downloads: `[C]` for a complete one, `[D]` with its state and destination otherwise. */
export function downloadLine(d: DownloadView): string {
  const head = `[${d.state === "complete" ? "C" : "D"}] ${fileRef(d.groupId, d.name)}`;
  if (d.state === "complete") return head;
  return `${head}  ${describeDownload(d)}  -> ${d.target}`;
}

/**
 * A download's state in the manner of aria2c's summary:
 * `130 MiB/300 MiB 43.3%  DL 12.5 MB/s  ETA 14 s  2 peers (1 direct, 1 relayed)`.
 */
export function describeDownload(d: DownloadView): string {
  const bytes = `${formatBytes(d.bytesDone)}/${formatBytes(d.size)} ${d.percent.toFixed(1)}%`;
  switch (d.state) {
    case "starting":
      return "starting";
    case "downloading": {
      const kinds = Object.entries(d.peersByPath)
        .filter(([, n]) => n > 0)
        .map(([kind, n]) => `${n} ${kind}`);
      const peers = `${plural(d.peers.length, "peer")}${kinds.length > 0 ? ` (${kinds.join(", ")})` : ""}`;
      return `${bytes}  DL ${formatRate(d.speedBps)}  ETA ${formatEta(d.etaSeconds)}  ${peers}`;
    }
    case "waiting": {
      const retry = d.retry ?? { tries: 0, nextTryMs: 0 };
      const secs = Math.max(0, Math.ceil(retry.nextTryMs / 1000));
      return `${bytes}  waiting for a sharer: try ${retry.tries} in ${secs} s`;
    }
    case "verifying":
      return `${formatBytes(d.size)}/${formatBytes(d.size)} 100%  checking the whole file's SHA1`;
    case "complete":
      return "complete";
    case "failed":
      return `failed: ${d.error?.message}`;
    case "stopped":
      return "stopped (resumes at next login)";
  }
}

/**
 * What this run fetched and how long it spent fetching (not waiting for a sharer,
 * not checking), so the rate is the network's; bytes a resume found on disk are
 * named apart.
 */
export function completeLine(d: DownloadView): string {
  const secs = d.fetchingMs / 1000;
  const rate = d.fetchingMs > 0 ? `, ${formatRate((d.bytesThisRun * 1000) / d.fetchingMs)}` : "";
  const had = d.size - d.bytesThisRun;
  const before = had > 0 ? `; ${formatBytes(had)} were already on disk` : "";
  // said only when some came another way than a direct connection
  const ways = Object.entries(d.receivedByPath).filter(([, n]) => n > 0);
  const how =
    ways.length > 0 && ways.some(([k]) => k !== "direct")
      ? `: ${ways.map(([k, n]) => `${formatBytes(n)} ${k}`).join(", ")}`
      : "";
  return `download complete: ${fileRef(d.groupId, d.name)} -> ${d.target} (${formatBytes(d.bytesThisRun)} fetched in ${secs < 10 ? secs.toFixed(2) : secs.toFixed(0)} s${rate}${how}${before})`;
}

export function downloadWarningLine(d: DownloadRef, w: DownloadWarning): string {
  const file = fileRef(d.groupId, d.name);
  switch (w.kind) {
    case "corrupt-piece":
      return `warning: peer ${printable(w.addr)} sent a corrupt piece ${w.piece} of ${file}: dropped it`;
    case "impostor":
      return (
        `warning: whoever is at ${printable(w.addr)} did not prove the key the tracker gave for that sharer ` +
        `of ${file}: sent it nothing, and not dialling it again`
      );
    case "unreachable":
      return `warning: cannot reach the sharer at ${printable(w.addr)} for ${file}: ${printable(w.reason)}; retrying on the download's schedule`;
    case "refused":
      return `warning: peer ${printable(w.addr)} refused ${file}: ${w.refusal}`;
    case "announce-failed":
      return `warning: could not announce ${w.complete ? "the complete file" : "a partial share"}: ${w.message}`;
  }
}

const SIGNAL_WORK = {
  reverse: "dial a downloader back",
  relay: "join a relay",
  punch: "punch through to a downloader",
};

export function warningLine(w: EngineWarning): string {
  switch (w.kind) {
    case "state-dir-open":
      return `warning: cannot make the state folder owner-only: ${w.problem}`;
    case "state-save-failed":
      return `warning: cannot save state to ${w.path}: ${w.message}`;
    case "remembered-login":
      return `warning: not logging in by itself: ${w.message}`;
    case "reshare-skipped": {
      const what = fileRef(w.groupId, w.name);
      if (w.why === "unavailable") return `warning: not sharing ${what} again yet: ${w.message}`;
      if (w.why === "refused") return `warning: not sharing ${what} again: ${w.message}`;
      return `warning: not sharing ${what} again: ${w.path} ${w.why === "gone" ? "is gone" : "changed since it was shared"}`;
    }
    case "session-ended":
      return "warning: your session ended (this user logged in elsewhere, or the tracker did not hear from us for too long): logged out here";
    case "peer-server":
      return `warning: peer server: ${w.message}`;
    case "share-changed":
      return `warning: ${w.path} changed on disk since it was shared: no longer sharing it`;
    case "share-shorter":
      return `warning: ${w.path} is shorter than shared: no longer sharing it`;
    case "serving-failed":
      return `warning: serving a peer failed: ${w.message}`;
    case "signal-failed":
      return `info: could not ${SIGNAL_WORK[w.signal]}: ${w.reason}`;
  }
}

/**
 * The shell's line for an event, and whether it is a warning (stderr, yellow), or
 * undefined for the events the shell does not print: progress shows in the prompt's
 * bar and in show_downloads, logins and logouts in their commands' answers, and
 * hashing is drawn as a bar of its own.
 */
export function eventLine(e: EngineEvent): { line: string; warning: boolean } | undefined {
  switch (e.type) {
    case "download-complete":
      return { line: completeLine(e.download), warning: false };
    case "download-failed":
      return {
        line: `download failed: ${fileRef(e.download.groupId, e.download.name)}: ${e.error.message}`,
        warning: false,
      };
    case "download-warning":
      return { line: downloadWarningLine(e.download, e.warning), warning: true };
    case "warning":
      return { line: warningLine(e.warning), warning: true };
    case "join-request":
      return {
        line: `${e.request.userId} asks to join ${e.request.groupId}: accept_request ${e.request.groupId} ${e.request.userId}`,
        warning: false,
      };
    case "request-accepted":
      return { line: `you are now a member of ${e.groupId}`, warning: false };
    case "download-progress":
    case "hashing":
    case "logged-in":
    case "logged-out":
      return undefined;
  }
}

const limitText = (rate: LimitRate) => formatLimit(rate ?? undefined);

export function limitSetLines(r: LimitSet): string[] {
  const what = r.direction === "up" ? "upload" : "download";
  const of =
    r.groupId === null ? "client-wide" : r.name === null ? `group ${r.groupId}` : fileRef(r.groupId, r.name);
  return [`${what} limit (${of}): ${limitText(r.rate)}`];
}

export function limitLines(r: LimitsView): string[] {
  const lines = [`upload limit: ${limitText(r.up)}`, `download limit: ${limitText(r.down)}`];
  for (const g of r.groups)
    lines.push(`  group ${g.groupId}: upload ${limitText(g.up)}, download ${limitText(g.down)}`);
  for (const d of r.downloads) lines.push(`  ${fileRef(d.groupId, d.name)}: download ${limitText(d.down)}`);
  return lines;
}
