import type { ErrorCode } from "../../shared/errors.js";

/** Which download an event is about. */
export interface DownloadRef {
  groupId: string;
  name: string;
  target: string;
}

/** Something a download met and works around: a bad peer, an unreachable one, a tracker that did not hear it. */
export type DownloadWarning =
  | { kind: "corrupt-piece"; addr: string; piece: number }
  /** whoever is at addr did not prove the key the tracker gave for that sharer: not dialled again */
  | { kind: "impostor"; addr: string }
  | { kind: "unreachable"; addr: string; reason: string }
  | { kind: "refused"; addr: string; refusal: string }
  | { kind: "announce-failed"; complete: boolean; message: string };

/** Why a download failed, as a value: a code of the registry and its message. */
export interface DownloadFailure {
  code: ErrorCode;
  message: string;
}

/**
 * What one download tells as it goes, as data: the engine adds the download's view
 * and front ends word it.
 */
export type DownloadNews =
  /** pieces arrived (at most once a second) or the phase changed */
  | { type: "progress" }
  | { type: "complete" }
  | { type: "failed"; failure: DownloadFailure }
  | { type: "warning"; warning: DownloadWarning };

export type DownloadListener = (news: DownloadNews) => void;
