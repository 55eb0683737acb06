import type { TrackerClient } from "../tracker/trackerClient.js";

/** What the tracker says of the file: its size, SHA1 and piece hashes. */
export interface FileInfo {
  name: string;
  size: number;
  sha1: string;
  /** fileIdOf(size, pieces), from trackers that send it: it must match what we compute */
  fileId?: string;
  /** every piece's SHA1, concatenated, in base64 */
  pieces: string;
}

/** One sharer as the tracker lists it. */
export interface Sharer {
  userId: string;
  addr: string;
  /** the key its peer server proves */
  key: string;
  complete: boolean;
  /** most likely behind a router: dialling it directly may not work */
  nat?: boolean;
}

/** A ticket for the file's sharers, and who they are now. */
export interface Grant {
  ticket: string;
  peers: Sharer[];
}

/**
 * Everything one download asks of the tracker, for one file of one group. The
 * download sees only this, so a test can stand in for the tracker with an object.
 */
export interface FileTracker {
  /** The file's hashes, a first ticket and sharers. */
  begin(): Promise<{ file: FileInfo } & Grant>;
  /** A fresh ticket and the sharers now. */
  peers(): Promise<Grant>;
  /** Lists us as a sharer of the file: of some pieces (complete false) or all. */
  addSharer(complete: boolean): Promise<void>;
  /** Takes us off the file's sharers (the partial file is gone). */
  removeSharer(): Promise<void>;
}

/** The tracker calls of one file, through the client's tracker connection (with its failover). */
export function fileTracker(tracker: TrackerClient, groupId: string, name: string): FileTracker {
  const file = { groupId, name };
  return {
    begin: () => tracker.call("download", file, {}),
    peers: () => tracker.call("peers", file, {}),
    addSharer: async (complete) => {
      await tracker.call("announce", file, { complete });
    },
    removeSharer: async () => {
      await tracker.call("stopShare", file);
    },
  };
}
