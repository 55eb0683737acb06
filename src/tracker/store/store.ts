/**
 * The tracker's store: every rule of DESIGN.md ("Rules the tracker enforces")
 * that needs the directory's state is one method here, run atomically, so that
 * two trackers racing on the same action get one success and one GsError.
 *
 * One implementation of the rules (SqlStore) runs over two SQL drivers
 * (SQLite, PostgreSQL); test/compliance runs the same suite against both.
 * Times are passed in (`now`, ms since the epoch) so tests control the clock.
 */

export interface UserRecord {
  userId: string;
  /** scrypt hash with its salt and parameters, encoded by tracker/passwords.ts. */
  passwordHash: string;
}

export interface SessionRecord {
  userId: string;
  /**
   * ip:port handed to downloaders while online: the port the client announced at
   * the IP its login came from.
   */
  peerAddr: string;
  /** The ip:port the client announced; a hint only (it may be 0.0.0.0, or behind NAT). */
  claimedAddr: string;
  /** The public key the client's peer server proves (peerKey.ts); absent in sessions from before keys. */
  peerKey?: string;
  createdAt: number;
  lastSeen: number;
}

/** A remembered device of a user (a login's `remember`). */
export interface DeviceSummary {
  deviceId: string;
  /** what the user called it when it was remembered */
  name: string;
  createdAt: number;
  /** the last login with it (its creation until then) */
  lastUsed: number;
}

export interface DeviceRecord extends DeviceSummary {
  /** SHA-256 of the device's secret, hex: the secret itself is never stored. */
  secretHash: string;
}

export type GroupRole = "owner" | "member" | "pending" | "none";

export interface GroupQuery {
  /** "" matches every group */
  prefix: string;
  limit: number;
}

export interface GroupPage {
  groups: GroupSummary[];
  total: number;
}

export interface GroupSummary {
  groupId: string;
  owner: string;
  members: number;
  /** The asking user's relation to the group. */
  role: GroupRole;
}

export interface JoinRequest {
  userId: string;
  requestedAt: number;
}

export interface Member {
  userId: string;
  joinedAt: number;
  role: "owner" | "member";
}

export interface LeaveResult {
  /** The member who became owner when the owner left. */
  newOwner?: string;
  /** True when the last member left and the group is gone. */
  deleted: boolean;
  /** True when the user was not a member but had a pending request, now withdrawn. */
  withdrawn?: boolean;
}

export interface FileMeta {
  name: string;
  size: number;
  /** Whole-file SHA1, 40 lowercase hex characters. */
  sha1: string;
  /** Every piece's SHA1, 20 bytes each, concatenated in piece order. */
  pieces: Buffer;
}

/** A registered file. */
export interface StoredFile extends FileMeta {
  /** fileIdOf(size, pieces): what identifies the file to peers and in tickets. */
  fileId: string;
}

export interface FileSummary {
  name: string;
  size: number;
  sha1: string;
  fileId: string;
  /** Sharers (complete or partial) whose session is online now. */
  sharersOnline: number;
  /** Of those, the ones holding the whole file. */
  seedersOnline: number;
}

export interface PeerRecord {
  userId: string;
  peerAddr: string;
  /** the address the sharer's client announced (its LAN address when it is behind a router) */
  claimedAddr: string;
  /** The sharer's peer key, from its session. */
  peerKey?: string;
  complete: boolean;
}

export interface SigningKey {
  /** Ed25519 keys, PEM (SPKI / PKCS8). */
  publicKey: string;
  privateKey: string;
}

/** The TLS identity every tracker of the store presents. */
export interface TlsIdentity {
  /** A self-signed certificate, PEM. */
  certificate: string;
  /** Its Ed25519 key, PEM (PKCS8). */
  privateKey: string;
}

export interface Store {
  /** USER_EXISTS when taken. */
  createUser(user: UserRecord, now: number): Promise<void>;
  getUser(userId: string): Promise<UserRecord | undefined>;

  /**
   * A user is logged in from one client at a time: this replaces any earlier
   * session of the user (the old token stops working, its address stops being
   * handed out) and clears the user's shares, which the new client announces again.
   */
  createSession(
    tokenHash: string,
    userId: string,
    peerAddr: string,
    now: number,
    claimedAddr?: string,
    peerKey?: string,
  ): Promise<void>;
  /** The session if it exists (online or not: callers compare lastSeen). */
  getSession(tokenHash: string): Promise<SessionRecord | undefined>;
  /** Heartbeat: false when the session no longer exists or was last seen before `aliveSince`. */
  touchSession(tokenHash: string, now: number, aliveSince: number): Promise<boolean>;
  /** Ends every session last seen before `idleSince`, with its shares; returns how many. */
  expireSessions(idleSince: number): Promise<number>;
  /** Logout: the session ends and the user's shares are cleared. */
  deleteSession(tokenHash: string): Promise<void>;

  // Remembered devices: a login with a device's secret instead of the password.

  /**
   * Remembers a device of the user. QUOTA_EXCEEDED when the user has `max` already
   * (counted in the same transaction: racing adds cannot pass it); USER_NOT_FOUND.
   */
  addDevice(userId: string, device: Omit<DeviceRecord, "lastUsed">, max: number): Promise<void>;
  /** The user's device `deviceId`, if the user has one by that id. */
  getDevice(userId: string, deviceId: string): Promise<DeviceRecord | undefined>;
  /** Records a login with the device; false when the user no longer has it (revoked meanwhile). */
  useDevice(userId: string, deviceId: string, now: number): Promise<boolean>;
  /** The user's devices, oldest first, without their secrets' hashes. */
  listDevices(userId: string): Promise<DeviceSummary[]>;
  /** Forgets the user's device: false when the user had none by that id. */
  revokeDevice(userId: string, deviceId: string): Promise<boolean>;

  /** GROUP_EXISTS when taken; the creator owns the group and is its first member. */
  createGroup(groupId: string, owner: string, now: number): Promise<void>;
  /**
   * The groups whose id starts with `prefix`, with the asking user's role in each:
   * the user's own (owner, member, pending) first, then the others, each part ordered
   * by id (bytewise), at most `limit` in all; `total` counts every group that matches.
   */
  listGroups(userId: string, query: GroupQuery): Promise<GroupPage>;
  /** GROUP_NOT_FOUND, ALREADY_MEMBER, REQUEST_EXISTS. */
  requestJoin(groupId: string, userId: string, now: number): Promise<void>;
  /** GROUP_NOT_FOUND, NOT_OWNER. Oldest first. */
  listRequests(groupId: string, ownerId: string): Promise<JoinRequest[]>;
  /** The group's members in the order they joined (the owner first). GROUP_NOT_FOUND, NOT_MEMBER. */
  listMembers(groupId: string, userId: string): Promise<Member[]>;
  /** GROUP_NOT_FOUND, NOT_OWNER, ALREADY_MEMBER, REQUEST_NOT_FOUND. */
  acceptRequest(groupId: string, ownerId: string, userId: string, now: number): Promise<void>;
  /** The owner refuses a pending request. GROUP_NOT_FOUND, NOT_OWNER, REQUEST_NOT_FOUND. */
  rejectRequest(groupId: string, ownerId: string, userId: string): Promise<void>;
  /**
   * The owner removes a member, whose shares in the group end. GROUP_NOT_FOUND,
   * NOT_OWNER, CANNOT_REMOVE_OWNER (the owner leaves instead), MEMBER_NOT_FOUND.
   */
  removeMember(groupId: string, ownerId: string, userId: string): Promise<void>;
  /**
   * GROUP_NOT_FOUND, NOT_MEMBER (a pending request is withdrawn instead, with
   * deleted=false). The leaver's shares in the group end; an owner who leaves hands
   * the group to the member who joined earliest; the last member's leaving deletes it.
   */
  leaveGroup(groupId: string, userId: string): Promise<LeaveResult>;
  /** GROUP_NOT_FOUND, NOT_MEMBER. */
  assertMember(groupId: string, userId: string): Promise<void>;

  /**
   * Registers a file (or, for the same content under the same name, adds the user
   * as a sharer) and makes the user a sharer. FILE_EXISTS when the name is taken by
   * other content. GROUP_NOT_FOUND, NOT_MEMBER.
   */
  addFile(groupId: string, userId: string, file: FileMeta, complete: boolean, now: number): Promise<void>;
  /** Every file of the group, by name, with online sharer counts. GROUP_NOT_FOUND, NOT_MEMBER. */
  listFiles(groupId: string, userId: string, now: number): Promise<FileSummary[]>;
  /** GROUP_NOT_FOUND, NOT_MEMBER, FILE_NOT_FOUND. */
  getFile(groupId: string, name: string, userId: string): Promise<StoredFile>;
  /** Online sharers of a file, the asking user excluded. */
  listPeers(groupId: string, name: string, userId: string, now: number): Promise<PeerRecord[]>;
  /** Announce a (partial or complete) share of a registered file. GROUP_NOT_FOUND, NOT_MEMBER, FILE_NOT_FOUND. */
  addShare(groupId: string, name: string, userId: string, complete: boolean, now: number): Promise<void>;
  /** stop_share. NOT_SHARING when the user does not share it. */
  removeShare(groupId: string, name: string, userId: string): Promise<void>;

  /**
   * The one ticket-signing key that every tracker uses: the first caller's
   * `generated` key is stored; every caller, racing or not, gets the stored one.
   */
  signingKey(generated: SigningKey): Promise<SigningKey>;
  /** The one TLS identity every tracker presents: like signingKey, the first stored wins. */
  tlsIdentity(generated: TlsIdentity): Promise<TlsIdentity>;

  close(): Promise<void>;

  // Login throttle, trusted addresses, password upgrades and quotas.

  /**
   * Counts one attempt against every rule's key, atomically and before the attempt is
   * evaluated: 0 when admitted (each key's count went up by one, and a key that reached
   * its rule's `free` count is blocked for the rule's doubling time), else the ms until
   * the last of the keys' blocks ends (and nothing is counted). An entry is forgotten
   * only THROTTLE_RETENTION_MS after both its last attempt and the end of its block.
   */
  admitAttempt(rules: readonly ThrottleRule[], now: number): Promise<number>;
  /**
   * After a successful attempt: the `reset` keys start over; the `refund` rules' keys get
   * this attempt back (and lose their block when that takes them below `free`).
   */
  attemptSucceeded(reset: readonly string[], refund: readonly ThrottleRule[], now: number): Promise<void>;
  /** The throttle's entry for a key, if it has one. */
  throttleEntry(key: string): Promise<ThrottleEntry | undefined>;
  /** Records a successful login from `addr`; keeps the user's `keep` most recent addresses. */
  trustAddress(userId: string, addr: string, now: number, keep: number): Promise<void>;
  /** True when the user logged in from `addr` at or after `since`. */
  isTrustedAddress(userId: string, addr: string, since: number): Promise<boolean>;
  /** Replaces a user's password hash (an upgrade to today's parameters). USER_NOT_FOUND. */
  setPasswordHash(userId: string, passwordHash: string): Promise<void>;
  /** What counts against a user's quotas. */
  usage(userId: string): Promise<Usage>;

  // Signals: what a tracker asks of a logged-in client, through whichever tracker it polls.

  /**
   * Queues `payload` for the user's client until `expiresAt`. BUSY when MAX_PENDING_SIGNALS
   * of the user's are waiting unexpired (a client that does not poll cannot fill the store).
   * Expired signals of every user are deleted on the way.
   */
  postSignal(userId: string, payload: string, now: number, expiresAt: number): Promise<void>;
  /**
   * The user's unexpired signals after `after` (a seq), oldest first, at most `limit`;
   * those at or before `after` have been read and are deleted.
   */
  takeSignals(userId: string, after: number, now: number, limit: number): Promise<Signal[]>;
  /** The newest seq of any signal, and the users with signals after `after` (at most `limit`): whom to wake. */
  signalsAfter(after: number, limit: number): Promise<{ last: number; users: string[] }>;
}

/** Signals one user may have waiting: more than a client reads in one poll is a flood. */
export const MAX_PENDING_SIGNALS = 32;

export interface Signal {
  /** Increases with every signal posted, across trackers. */
  seq: number;
  payload: string;
}

/** One key of the login throttle and how it escalates (see tracker/throttle.ts). */
export interface ThrottleRule {
  key: string;
  /** Attempts counted before the first block. */
  free: number;
  /** The first block; each further attempt doubles it. */
  baseBlockMs: number;
  maxBlockMs: number;
}

export interface ThrottleEntry {
  /** Attempts counted and not cleared by a success. */
  failures: number;
  /** 0, or when the block ends (ms since the epoch). */
  blockedUntil: number;
}

/** A throttle entry is kept this long after its last attempt and the end of its block. */
export const THROTTLE_RETENTION_MS = 3600_000;

export interface Usage {
  /** Groups the user owns. */
  groups: number;
  /** Files the user registered that still exist. */
  files: number;
  /** Bytes of those files' piece lists. */
  pieceBytes: number;
}
