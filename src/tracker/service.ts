import { createHash, generateKeyPairSync, type KeyObject, createPrivateKey, randomBytes } from "node:crypto";
import { MAX_PASSWORD_LENGTH, TICKET_TTL_MS } from "../shared/constants.js";
import { GsError } from "../shared/errors.js";
import { checkFileName, checkId } from "../shared/ids.js";
import { signTicket } from "../shared/tickets.js";
import { DEFAULT_HASH_GATE, HashGate, type HashGateOptions } from "./hashGate.js";
import { checkPassword, DUMMY_HASH, hashPassword, needsRehash } from "./passwords.js";
import { DEFAULT_QUOTAS, QuotaGuard, type Quotas } from "./quotas.js";
import { type BucketRule, GLOBAL, PER_ADDRESS, RegistrationLimiter } from "./registrations.js";
import type { FileMeta, Store } from "./store/store.js";
import { loginKeys, TRUST_MS, TRUSTED_PER_USER } from "./throttle.js";

export interface PeerInfo {
  userId: string;
  addr: string;
  complete: boolean;
}

export interface DownloadGrant {
  ticket: string;
  ticketExpires: number;
  peers: PeerInfo[];
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

/** The tracker's limits; tests shrink them, the tracker runs with the defaults. */
export interface TrackerLimits {
  quotas: Quotas;
  hashGate: HashGateOptions;
  registrationsPerAddress: BucketRule;
  registrationsGlobal: BucketRule;
}

/**
 * The tracker's behaviour over its store: passwords, sessions, tickets, and the
 * checks of every argument. The login throttle lives in the store too, so any
 * number of trackers can serve the same store; each keeps only its own CPU's bounds
 * (the hash gate, the registration rate).
 */
export class TrackerService {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #sessions = new Map<string, { userId: string; until: number }>();
  readonly #hashGate: HashGate;
  readonly #registrations: RegistrationLimiter;
  readonly #quotas: QuotaGuard;
  #signing?: { privateKey: KeyObject; publicKeyPem: string };

  constructor(store: Store, now: () => number = Date.now, limits: Partial<TrackerLimits> = {}) {
    this.#store = store;
    this.#now = now;
    this.#hashGate = new HashGate(limits.hashGate ?? DEFAULT_HASH_GATE);
    this.#registrations = new RegistrationLimiter(
      limits.registrationsPerAddress ?? PER_ADDRESS,
      limits.registrationsGlobal ?? GLOBAL,
      now(),
    );
    this.#quotas = new QuotaGuard(store, limits.quotas ?? DEFAULT_QUOTAS);
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

  /**
   * Cheap refusals first (rate, taken id), then the hash behind the gate, where logins
   * go first: a registration flood cannot delay a login by more than the hashes running.
   */
  async createUser(userId: string, password: string, clientAddr: string): Promise<void> {
    checkId("user id", userId);
    checkPassword_(password);
    this.#registrations.admit(clientAddr, this.#now());
    if (await this.#store.getUser(userId))
      throw new GsError("USER_EXISTS", `user '${userId}' already exists`);
    const pass = this.#hashGate.enter("register");
    let passwordHash: string;
    try {
      await pass.ready;
      passwordHash = await hashPassword(password);
    } finally {
      pass.release();
    }
    await this.#store.createUser({ userId, passwordHash }, this.#now());
  }

  /**
   * The attempt is counted in the store before the hash; an unknown user is hashed
   * against DUMMY_HASH, so both failures cost one hash and give one answer.
   */
  async login(userId: string, password: string, peerAddr: string, clientAddr: string): Promise<string> {
    checkId("user id", userId);
    checkPassword_(password);
    const pass = this.#hashGate.enter("login");
    let user: Awaited<ReturnType<Store["getUser"]>>;
    let keys: ReturnType<typeof loginKeys>;
    try {
      const now = this.#now();
      const trusted = await this.#store.isTrustedAddress(userId, clientAddr, now - TRUST_MS);
      keys = loginKeys(userId, clientAddr, trusted);
      const wait = await this.#store.admitAttempt(keys.rules, now);
      if (wait > 0) {
        throw new GsError(
          "TOO_MANY_ATTEMPTS",
          `too many failed logins: try again in ${Math.ceil(wait / 1000)} s`,
        );
      }
      user = await this.#store.getUser(userId);
      await pass.ready;
      const ok = await checkPassword(password, user?.passwordHash ?? DUMMY_HASH);
      // the same answer for an unknown user and a wrong password: ids are not probed this way
      if (!user || !ok) throw new GsError("WRONG_PASSWORD", "wrong user id or password");
      if (needsRehash(user.passwordHash)) {
        await this.#store.setPasswordHash(userId, await hashPassword(password));
      }
    } finally {
      pass.release();
    }
    const now = this.#now();
    await this.#store.attemptSucceeded(keys.reset, keys.refund, now);
    await this.#store.trustAddress(userId, clientAddr, now, TRUSTED_PER_USER);
    const token = randomBytes(32).toString("base64url");
    await this.#store.createSession(hashToken(token), userId, peerAddr, now);
    this.#forgetUser(userId);
    return token;
  }

  /** The user behind a bearer token; UNAUTHORIZED when the session has ended. */
  async authenticate(token: string | undefined): Promise<string> {
    if (!token) throw new GsError("UNAUTHORIZED", "not logged in");
    const key = hashToken(token);
    const now = this.#now();
    const cached = this.#sessions.get(key);
    if (cached && cached.until > now) return cached.userId;
    const session = await this.#store.getSession(key);
    if (!session) {
      this.#sessions.delete(key);
      throw new GsError("UNAUTHORIZED", "session ended: logged out, or logged in from another client");
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
    if (!(await this.#store.touchSession(hashToken(token), this.#now()))) {
      this.#sessions.delete(hashToken(token));
      throw new GsError("UNAUTHORIZED", "session ended: logged out, or logged in from another client");
    }
  }

  async logout(token: string): Promise<void> {
    this.#sessions.delete(hashToken(token));
    await this.#store.deleteSession(hashToken(token));
  }

  createGroup(userId: string, groupId: string) {
    checkId("group id", groupId);
    return this.#quotas.createGroup(userId, () => this.#store.createGroup(groupId, userId, this.#now()));
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

  listFiles(userId: string, groupId: string) {
    return this.#store.listFiles(checkId("group id", groupId), userId, this.#now());
  }

  async upload(userId: string, groupId: string, file: FileMeta): Promise<void> {
    checkId("group id", groupId);
    checkFileName(file.name);
    await this.#quotas.addFile(userId, groupId, file, () =>
      this.#store.addFile(groupId, userId, file, true, this.#now()),
    );
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

  /** A fresh ticket and the online sharers: what a download starts and refreshes with. */
  async grant(userId: string, groupId: string, name: string, sha1: string): Promise<DownloadGrant> {
    if (!this.#signing) throw new Error("TrackerService.init() was not called");
    const now = this.#now();
    const peers = await this.#store.listPeers(groupId, name, userId, now);
    const ticketExpires = now + TICKET_TTL_MS;
    const ticket = signTicket(this.#signing.privateKey, {
      u: userId,
      g: groupId,
      f: sha1,
      exp: ticketExpires,
    });
    return {
      ticket,
      ticketExpires,
      peers: peers.map((p) => ({ userId: p.userId, addr: p.peerAddr, complete: p.complete })),
    };
  }
}

function checkPassword_(password: string): void {
  if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
    throw new GsError("BAD_REQUEST", `a password is 1-${MAX_PASSWORD_LENGTH} characters`);
  }
}
