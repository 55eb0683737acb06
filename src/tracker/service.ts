import { createHash, generateKeyPairSync, type KeyObject, createPrivateKey, randomBytes } from "node:crypto";
import type { Answer } from "../shared/api.js";
import { MAX_PASSWORD_LENGTH, SESSION_IDLE_MS, TICKET_TTL_MS } from "../shared/constants.js";
import { GsError } from "../shared/errors.js";
import { fileIdOf } from "../shared/fileId.js";
import { checkFileName, checkId, isFileName, printable } from "../shared/ids.js";
import { signTicket } from "../shared/tickets.js";
import { formatHostPort, parseHostPort, type TrackerAddress } from "../shared/trackerInfo.js";
import { handOut, peerAddressProblem, sourceIp } from "./addresses.js";
import { checkPassword, hashPassword } from "./passwords.js";
import type { FileMeta, Store } from "./store/store.js";
import { LoginThrottle } from "./throttle.js";

export type DownloadGrant = Answer<"peers">;

export interface ServiceOptions {
  /** Every tracker of tracker_info.txt: their addresses are never handed out as a peer's. */
  trackers?: readonly TrackerAddress[];
  /** A session with no heartbeat for this long ends (SESSION_IDLE_MS). */
  sessionIdleMs?: number;
}

/**
 * How long a tracker trusts a session it has just read from the store. A logout or a
 * new login on this tracker takes effect at once; on another tracker, within this
 * time. It saves a store round trip on every request (a third of list_files' work on
 * PostgreSQL).
 */
const SESSION_CACHE_MS = 1_000;
/** Sessions cached at once (the oldest goes first). */
const SESSION_CACHE_SIZE = 10_000;

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * The tracker's behaviour over its store: passwords, sessions, tickets, and the
 * checks of every argument. Stateless apart from the login throttle, so any
 * number of trackers can serve the same store.
 */
export class TrackerService {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #throttle = new LoginThrottle();
  readonly #sessions = new Map<string, { userId: string; until: number }>();
  readonly #trackers: readonly TrackerAddress[];
  readonly #idleMs: number;
  #lastSweep = 0;
  #signing?: { privateKey: KeyObject; publicKeyPem: string };

  constructor(store: Store, now: () => number = Date.now, opts: ServiceOptions = {}) {
    this.#store = store;
    this.#now = now;
    this.#trackers = opts.trackers ?? [];
    this.#idleMs = opts.sessionIdleMs ?? SESSION_IDLE_MS;
  }

  /** Loads (or, for the first tracker ever, creates) the shared signing key. */
  async init(): Promise<void> {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519", {
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    const key = await this.#store.signingKey({ publicKey, privateKey });
    this.#signing = { privateKey: createPrivateKey(key.privateKey), publicKeyPem: key.publicKey };
  }

  get publicKeyPem(): string {
    if (!this.#signing) throw new Error("TrackerService.init() was not called");
    return this.#signing.publicKeyPem;
  }

  async createUser(userId: string, password: string): Promise<void> {
    checkId("user id", userId);
    checkPassword_(password);
    await this.#store.createUser({ userId, passwordHash: await hashPassword(password) }, this.#now());
  }

  /**
   * `claimedAddr` is the client's peer server as it sees it; downloaders are handed
   * its port at `clientAddr`, the IP the login came from.
   */
  async login(userId: string, password: string, claimedAddr: string, clientAddr: string): Promise<string> {
    checkId("user id", userId);
    checkPassword_(password);
    const { peerAddr, claimed } = this.#peerAddress(claimedAddr, clientAddr);
    const now = this.#now();
    const keys = [`u:${userId}`, `a:${clientAddr}`];
    const wait = Math.max(...keys.map((k) => this.#throttle.waitFor(k, now)));
    if (wait > 0) {
      throw new GsError(
        "TOO_MANY_ATTEMPTS",
        `too many failed logins: try again in ${Math.ceil(wait / 1000)} s`,
      );
    }
    const user = await this.#store.getUser(userId);
    // the same answer for an unknown user and a wrong password: ids are not probed this way
    if (!user || !(await checkPassword(password, user.passwordHash))) {
      for (const k of keys) this.#throttle.failed(k, now);
      throw new GsError("WRONG_PASSWORD", "wrong user id or password");
    }
    for (const k of keys) this.#throttle.succeeded(k);
    const token = randomBytes(32).toString("base64url");
    await this.#store.createSession(hashToken(token), userId, peerAddr, now, claimed);
    this.#forgetUser(userId);
    this.#sweep(now);
    return token;
  }

  /** The address downloaders are sent to: the claimed port at the connection's source IP. */
  #peerAddress(claimedAddr: string, clientAddr: string): { peerAddr: string; claimed: string } {
    const c = parseHostPort(claimedAddr);
    if (typeof c === "string") {
      throw new GsError("BAD_REQUEST", `peerAddr '${printable(claimedAddr)}' is not IP:PORT: ${c}`);
    }
    const ip = sourceIp(clientAddr);
    const problem = peerAddressProblem(ip, c.port, this.#trackers);
    const peerAddr = formatHostPort(ip, c.port);
    if (problem)
      throw new GsError(
        "BAD_REQUEST",
        `cannot hand out ${printable(peerAddr)} as your peer address: ${problem}`,
      );
    return { peerAddr, claimed: formatHostPort(c.host, c.port) };
  }

  /**
   * Deletes idle sessions now and then (at most once per idle time, or a minute),
   * in the background: the table holds only sessions that are alive.
   */
  #sweep(now: number): void {
    if (now - this.#lastSweep < Math.min(this.#idleMs, 60_000)) return;
    this.#lastSweep = now;
    this.#store.expireSessions(now - this.#idleMs).catch(() => {
      this.#lastSweep = 0; // a store outage: try again at the next beat
    });
  }

  /** The user behind a bearer token; UNAUTHORIZED when the session has ended. */
  async authenticate(token: string | undefined): Promise<string> {
    if (!token) throw new GsError("UNAUTHORIZED", "not logged in");
    const key = hashToken(token);
    const now = this.#now();
    const cached = this.#sessions.get(key);
    if (cached && cached.until > now) return cached.userId;
    const session = await this.#store.getSession(key);
    if (!session || session.lastSeen < now - this.#idleMs) {
      this.#sessions.delete(key);
      throw new GsError("UNAUTHORIZED", SESSION_ENDED);
    }
    this.#sessions.delete(key); // re-insert: Map order is our eviction order
    this.#sessions.set(key, { userId: session.userId, until: now + SESSION_CACHE_MS });
    if (this.#sessions.size > SESSION_CACHE_SIZE) this.#sessions.delete(this.#sessions.keys().next().value!);
    return session.userId;
  }

  /** Forgets this tracker's cached sessions of a user (a new login replaced them). */
  #forgetUser(userId: string): void {
    for (const [key, s] of this.#sessions) if (s.userId === userId) this.#sessions.delete(key);
  }

  async heartbeat(token: string): Promise<void> {
    const now = this.#now();
    if (!(await this.#store.touchSession(hashToken(token), now, now - this.#idleMs))) {
      this.#sessions.delete(hashToken(token));
      throw new GsError("UNAUTHORIZED", SESSION_ENDED);
    }
    this.#sweep(now);
  }

  async logout(token: string): Promise<void> {
    this.#sessions.delete(hashToken(token));
    await this.#store.deleteSession(hashToken(token));
  }

  createGroup(userId: string, groupId: string) {
    return this.#store.createGroup(checkId("group id", groupId), userId, this.#now());
  }

  listGroups(userId: string) {
    return this.#store.listGroups(userId);
  }

  joinGroup(userId: string, groupId: string) {
    return this.#store.requestJoin(checkId("group id", groupId), userId, this.#now());
  }

  leaveGroup(userId: string, groupId: string) {
    return this.#store.leaveGroup(checkId("group id", groupId), userId);
  }

  listRequests(userId: string, groupId: string) {
    return this.#store.listRequests(checkId("group id", groupId), userId);
  }

  acceptRequest(ownerId: string, groupId: string, userId: string) {
    return this.#store.acceptRequest(
      checkId("group id", groupId),
      ownerId,
      checkId("user id", userId),
      this.#now(),
    );
  }

  rejectRequest(ownerId: string, groupId: string, userId: string) {
    return this.#store.rejectRequest(checkId("group id", groupId), ownerId, checkId("user id", userId));
  }

  removeMember(ownerId: string, groupId: string, userId: string) {
    return this.#store.removeMember(checkId("group id", groupId), ownerId, checkId("user id", userId));
  }

  async listFiles(userId: string, groupId: string) {
    const files = await this.#store.listFiles(checkId("group id", groupId), userId, this.#now());
    // a name registered before today's rule can be asked for by no file route: not listed
    return files.filter((f) => isFileName(f.name));
  }

  /** Returns the file's id. */
  async upload(userId: string, groupId: string, file: FileMeta): Promise<string> {
    checkId("group id", groupId);
    const name = checkFileName(file.name);
    await this.#store.addFile(groupId, userId, { ...file, name }, true, this.#now());
    return fileIdOf(file.size, file.pieces);
  }

  announce(userId: string, groupId: string, name: string, complete: boolean) {
    return this.#store.addShare(
      checkId("group id", groupId),
      checkFileName(name),
      userId,
      complete,
      this.#now(),
    );
  }

  stopShare(userId: string, groupId: string, name: string) {
    return this.#store.removeShare(checkId("group id", groupId), checkFileName(name), userId);
  }

  getFile(userId: string, groupId: string, name: string) {
    return this.#store.getFile(checkId("group id", groupId), checkFileName(name), userId);
  }

  /**
   * A fresh ticket for the file (by its id) and the online sharers: what a download
   * starts and refreshes with. Only addresses that pass the hand-out rules are listed.
   */
  async grant(userId: string, groupId: string, name: string, fileId: string): Promise<DownloadGrant> {
    if (!this.#signing) throw new Error("TrackerService.init() was not called");
    const now = this.#now();
    const peers = await this.#store.listPeers(groupId, name, userId, now);
    const ticketExpires = now + TICKET_TTL_MS;
    const ticket = signTicket(this.#signing.privateKey, {
      u: userId,
      g: groupId,
      f: fileId,
      exp: ticketExpires,
    });
    return {
      ticket,
      ticketExpires,
      peers: peers
        .filter((p) => handOut(p.peerAddr, this.#trackers))
        .map((p) => ({ userId: p.userId, addr: p.peerAddr, complete: p.complete })),
    };
  }
}

const SESSION_ENDED = "session ended: logged out, logged in from another client, or idle too long";

function checkPassword_(password: string): void {
  if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
    throw new GsError("BAD_REQUEST", `a password is 1-${MAX_PASSWORD_LENGTH} characters`);
  }
}
