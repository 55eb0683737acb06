import { ERRORS, GsError } from "../../shared/errors.js";
import type { Download } from "../download/download.js";
import type { DownloadFailure, DownloadNews } from "../download/events.js";
import type { PeerServer } from "../serving/peerServer.js";
import { type SharedFile, uploadedOf } from "../serving/shares.js";
import type { DownloadView, EngineError, EngineEvent, ShareView } from "./types.js";

/** A failure with its registry hint. */
export function engineError(f: DownloadFailure): EngineError {
  return { code: f.code, message: f.message, hint: ERRORS[f.code].hint };
}

/**
 * What Engine.call threw, as a value for a front end: a GsError keeps its code; any
 * other error is a bug here, INTERNAL, with its message.
 */
export function errorValue(err: unknown): EngineError {
  if (err instanceof GsError) return engineError(err);
  return engineError({ code: "INTERNAL", message: err instanceof Error ? err.message : String(err) });
}

/** A download as front ends see it, now. */
export function downloadView(d: Download): DownloadView {
  const p = d.progress();
  return {
    groupId: d.groupId,
    name: d.name,
    target: d.target,
    state: p.phase,
    size: p.size,
    pieceCount: p.pieceCount,
    piecesDone: p.piecesDone,
    bytesDone: p.bytesDone,
    percent: p.percent,
    speedBps: p.speed,
    etaSeconds: p.etaSeconds ?? null,
    bytesThisRun: p.bytesThisRun,
    fetchingMs: p.fetchingMs,
    peers: p.links.map((l) => ({
      userId: l.userId,
      addr: l.addr,
      bytes: l.bytes,
      ...(l.path && { path: l.path }),
    })),
    peersByPath: p.paths,
    receivedByPath: p.receivedByPath,
    ...(p.phase === "waiting" && { retry: { tries: p.tries, nextTryMs: p.nextTryMs } }),
    ...(d.error && { error: engineError(d.error) }),
    ...totals(p.uploadedBytes, p.downloadedBytes),
  };
}

/** Lifetime totals and their ratio (uploaded per byte downloaded; null before any download). */
function totals(uploadedBytes: number, downloadedBytes: number) {
  return {
    uploadedBytes,
    downloadedBytes,
    ratio: downloadedBytes > 0 ? uploadedBytes / downloadedBytes : null,
  };
}

/** What this client serves, one view per shared file, with the connections serving each now. */
export function shareViews(files: readonly SharedFile[], peerServer: PeerServer): ShareView[] {
  const serving = peerServer.connectionsByFile();
  return files.map((f) => ({
    groupId: f.groupId,
    name: f.name,
    path: f.path,
    size: f.size,
    sha1: f.sha1,
    fileId: f.fileId,
    piecesHave: f.have.count,
    pieceCount: f.pieceCount,
    servedBytes: f.servedBytes,
    ...totals(uploadedOf(f), f.downloadedBytes),
    serving: { direct: 0, reversed: 0, punched: 0, relayed: 0, ...serving.get(f) },
  }));
}

/** A download's news as the engine tells it, with the download's view now. */
export function downloadEvent(d: Download, n: DownloadNews): EngineEvent {
  switch (n.type) {
    case "progress":
      return { type: "download-progress", download: downloadView(d) };
    case "complete":
      return { type: "download-complete", download: downloadView(d) };
    case "failed":
      return { type: "download-failed", download: downloadView(d), error: engineError(n.failure) };
    case "warning":
      return {
        type: "download-warning",
        download: { groupId: d.groupId, name: d.name, target: d.target },
        warning: n.warning,
      };
  }
}
