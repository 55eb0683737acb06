import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import type { Answer, Signal } from "../shared/api.js";
import {
  LIST_GROUPS_LIMIT,
  MAX_DEVICES_PER_USER,
  MAX_PASSWORD_LENGTH,
  SESSION_IDLE_MS,
  SIGNAL_TTL_MS,
  SIGNAL_WAIT_MS,
  TICKET_TTL_MS,
} from "../shared/constants.js";
import { GsError } from "../shared/errors.js";
import { fileIdOf } from "../shared/fileId.js";
import { checkFileName, checkId, isFileName, printable } from "../shared/ids.js";
import { peerKeyProblem } from "../shared/peerKey.js";
import { signTicket } from "../shared/tickets.js";
import { formatHostPort, parseHostPort, type TrackerAddress } from "../shared/trackerInfo.js";
import { selfSignedCertificate } from "../shared/x509.js";
import { peerAddressProblem, reachAddress, sourceIp } from "./addresses.js";
import { type BucketRule, Buckets } from "./buckets.js";
import { DEFAULT_HASH_GATE, HashGate, type HashGateOptions } from "./hashGate.js";
import { checkPassword, DUMMY_HASH, hashPassword, needsRehash } from "./passwords.js";
import { DEFAULT_QUOTAS, QuotaGuard, type Quotas } from "./quotas.js";
import { Punches } from "./punches.js";
import { Relay, type RelayLimits } from "./relay.js";
import { SignalHub } from "./signals.js";
import { GLOBAL, PER_ADDRESS, RegistrationLimiter } from "./registrations.js";
import type { FileMeta, PeerRecord, Store, TlsIdentity } from "./store/store.js";
import { type LoginKeys, loginKeys, TRUST_MS, TRUSTED_PER_USER } from "./throttle.js";

export type DownloadGrant = Answer<"peers">;

export interface ServiceOptions extends Partial<TrackerLimits> {
  /** Every tracker of tracker_info.txt: their addresses are never handed out as a peer's. */
  trackers?: readonly TrackerAddress[];
  /** A session with no heartbeat for this long ends (SESSION_IDLE_MS). */
  sessionIdleMs?: number;
  /** This tracker's line of tracker_info.txt: where its relay is, as members know it. Without it, no relay. */
  self?: TrackerAddress;
  relay?: Partial<RelayLimits>;
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

/** Session tokens and device secrets are 256 random bits: SHA-256 is all they need, no salt or stretching. */
function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** What a login with no such device is compared against: no secret hashes to it. */
const NO_DEVICE_HASH = "00".repeat(32);

/** A remembered device's credential, answered once when it is made. */
export interface DeviceCredential {
  deviceId: string;
  secret: string;
}

/** The tracker's limits; tests shrink them, the tracker runs with the defaults. */
export interface TrackerLimits {
  quotas: Quotas;
  hashGate: HashGateOptions;
  registrationsPerAddress: BucketRule;
  registrationsGlobal: BucketRule;
  /** reversals and hole punches one member may ask for */
  reachRequests: BucketRule;
}

/**
 * Reversals and hole punches per member and tracker. Each makes another member's client
 * dial (16 answers at once, 4 for one downloader), so this is what one member can
 * make others dial. A download asks for at most one of each per sharer it dials (8 at
 * once), again on its retry schedule: 64 at once covers several downloads starting
 * together, then two a second.
 */
export const REACH_REQUESTS: BucketRule = { burst: 64, everyMs: 500 };
/** Members whose reach requests are counted at once (a full bucket is dropped first). */
const REACH_REQUESTERS = 50_000;

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
  readonly #trackers: readonly TrackerAddress[];
  readonly #idleMs: number;
  #lastSweep = 0;
  readonly #hashGate: HashGate;
  readonly #registrations: RegistrationLimiter;
  readonly #quotas: QuotaGuard;
  readonly #reachRequests: Buckets;
  #signing?: { privateKey: KeyObject; publicKeyPem: string };
  #tls?: TlsIdentity;
  readonly #self: TrackerAddress | undefined;
  readonly signals: SignalHub;
  readonly relay: Relay;
  readonly #punches = new Punches();

  constructor(store: Store, now: () => number = Date.now, opts: ServiceOptions = {}) {
    this.#store = store;
    this.#now = now;
    this.#trackers = opts.trackers ?? [];
    this.#idleMs = opts.sessionIdleMs ?? SESSION_IDLE_MS;
    this.#hashGate = new HashGate(opts.hashGate ?? DEFAULT_HASH_GATE);
    this.#registrations = new RegistrationLimiter(
      opts.registrationsPerAddress ?? PER_ADDRESS,
      opts.registrationsGlobal ?? GLOBAL,
      now(),
    );
    this.#quotas = new QuotaGuard(store, opts.quotas ?? DEFAULT_QUOTAS);
    this.#reachRequests = new Buckets(opts.reachRequests ?? REACH_REQUESTS, now(), REACH_REQUESTERS);
    this.#self = opts.self;
    this.signals = new SignalHub(store, now);
    this.relay = new Relay(opts.relay, now);
  }

  /** Loads (or, for the first tracker ever, creates) the shared signing key and TLS identity. */
  async init(): Promise<void> {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519", {
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    const key = await this.#store.signingKey({ publicKey, privateKey });
    this.#signing = { privateKey: createPrivateKey(key.privateKey), publicKeyPem: key.publicKey };
    // a key of its own, not the signing key: a TLS handshake never signs what a ticket signs
    const tlsKey = generateKeyPairSync("ed25519").privateKey;
    this.#tls = await this.#store.tlsIdentity({
      certificate: selfSignedCertificate(tlsKey, "groupshare tracker"),
      privateKey: tlsKey.export({ type: "pkcs8", format: "pem" }) as string,
    });
  }

  /** The certificate and key every tracker of this store presents (unless given its own). */
  get tlsIdentity(): TlsIdentity {
    if (!this.#tls) throw new Error("TrackerService.init() was not called");
    return this.#tls;
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
   * `claimedAddr` is the client's peer server as it sees it; downloaders are handed
   * its port at `clientAddr`, the IP the login came from. `remember` names this device:
   * the answer then carries a new device credential for deviceLogin.
   *
   * The attempt is counted in the store before the hash; an unknown user is hashed
   * against DUMMY_HASH, so both failures cost one hash and give one answer.
   */
  async login(
    userId: string,
    password: string,
    claimedAddr: string,
    clientAddr: string,
    peerKey: string,
    remember?: string,
  ): Promise<{ token: string; device?: DeviceCredential }> {
    checkId("user id", userId);
    checkPassword_(password);
    const addr = this.#sessionAddress(claimedAddr, clientAddr, peerKey);
    const pass = this.#hashGate.enter("login");
    let keys: LoginKeys;
    try {
      keys = await this.#admit(userId, clientAddr);
      const user = await this.#store.getUser(userId);
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
    await this.#succeeded(userId, clientAddr, keys);
    // before the session: a device refused (too many) leaves the user's current session alone
    const device = remember === undefined ? undefined : await this.#remember(userId, remember);
    const token = await this.#openSession(userId, addr, peerKey);
    return { token, ...(device && { device }) };
  }

  /**
   * A login with a remembered device's secret instead of the password: counted by the
   * same throttle and opening the same session. An unknown device, another user's, a
   * revoked one and a wrong secret get one answer, after one constant-time comparison.
   */
  async deviceLogin(
    userId: string,
    deviceId: string,
    secret: string,
    claimedAddr: string,
    clientAddr: string,
    peerKey: string,
  ): Promise<string> {
    checkId("user id", userId);
    const addr = this.#sessionAddress(claimedAddr, clientAddr, peerKey);
    const keys = await this.#admit(userId, clientAddr);
    const device = await this.#store.getDevice(userId, deviceId);
    const given = Buffer.from(hashToken(secret), "hex");
    const matches = timingSafeEqual(given, Buffer.from(device?.secretHash ?? NO_DEVICE_HASH, "hex"));
    if (!device || !matches || !(await this.#store.useDevice(userId, deviceId, this.#now()))) {
      throw new GsError("DEVICE_REFUSED", "this remembered login was revoked, or is not one of this user's");
    }
    await this.#succeeded(userId, clientAddr, keys);
    return this.#openSession(userId, addr, peerKey);
  }

  /** The user's remembered devices, so a lost one can be revoked. */
  listDevices(userId: string) {
    return this.#store.listDevices(userId);
  }

  async revokeDevice(userId: string, deviceId: string): Promise<void> {
    if (!(await this.#store.revokeDevice(userId, deviceId))) {
      throw new GsError("DEVICE_NOT_FOUND", "you have no remembered device by that id");
    }
  }

  /** A new device credential of the user: the secret is answered once and only its hash kept. */
  async #remember(userId: string, name: string): Promise<DeviceCredential> {
    const deviceId = randomBytes(16).toString("hex");
    const secret = randomBytes(32).toString("base64url");
    await this.#store.addDevice(
      userId,
      { deviceId, secretHash: hashToken(secret), name, createdAt: this.#now() },
      MAX_DEVICES_PER_USER,
    );
    return { deviceId, secret };
  }

  /** A login's peer key and the address it hands out, checked before its proof. */
  #sessionAddress(claimedAddr: string, clientAddr: string, peerKey: string) {
    const keyProblem = peerKeyProblem(peerKey);
    if (keyProblem) throw new GsError("BAD_REQUEST", `peerKey: ${keyProblem}`);
    return this.#peerAddress(claimedAddr, clientAddr);
  }

  /** Counts a login attempt in the store's throttle before its proof is checked; TOO_MANY_ATTEMPTS. */
  async #admit(userId: string, clientAddr: string): Promise<LoginKeys> {
    const now = this.#now();
    const trusted = await this.#store.isTrustedAddress(userId, clientAddr, now - TRUST_MS);
    const keys = loginKeys(userId, clientAddr, trusted);
    const wait = await this.#store.admitAttempt(keys.rules, now);
    if (wait > 0) {
      throw new GsError(
        "TOO_MANY_ATTEMPTS",
        `too many failed logins: try again in ${Math.ceil(wait / 1000)} s`,
      );
    }
    return keys;
  }

  /** A login proved: the throttle forgives it and the address becomes trusted for the user. */
  async #succeeded(userId: string, clientAddr: string, keys: LoginKeys): Promise<void> {
    const now = this.#now();
    await this.#store.attemptSucceeded(keys.reset, keys.refund, now);
    await this.#store.trustAddress(userId, clientAddr, now, TRUSTED_PER_USER);
  }

  /** The user's new session, which replaces any other; returns its token. */
  async #openSession(
    userId: string,
    { peerAddr, claimed }: { peerAddr: string; claimed: string },
    peerKey: string,
  ): Promise<string> {
    const now = this.#now();
    const token = randomBytes(32).toString("base64url");
    await this.#store.createSession(hashToken(token), userId, peerAddr, now, claimed, peerKey);
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

  /** Ends the session; with `device`, that remembered device of the user is revoked first. */
  async logout(token: string, userId: string, device?: string): Promise<void> {
    if (device !== undefined) await this.#store.revokeDevice(userId, device);
    this.#sessions.delete(hashToken(token));
    await this.#store.deleteSession(hashToken(token));
  }

  createGroup(userId: string, groupId: string) {
    checkId("group id", groupId);
    return this.#quotas.createGroup(userId, () => this.#store.createGroup(groupId, userId, this.#now()));
  }

  listGroups(userId: string, prefix = "") {
    return this.#store.listGroups(userId, { prefix, limit: LIST_GROUPS_LIMIT });
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

  listMembers(userId: string, groupId: string) {
    return this.#store.listMembers(checkId("group id", groupId), userId);
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
    const named = { ...file, name };
    await this.#quotas.addFile(userId, groupId, named, () =>
      this.#store.addFile(groupId, userId, named, true, this.#now()),
    );
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
  async grant(
    userId: string,
    token: string,
    groupId: string,
    name: string,
    fileId: string,
    clientAddr: string,
  ): Promise<DownloadGrant> {
    if (!this.#signing) throw new Error("TrackerService.init() was not called");
    const now = this.#now();
    const session = await this.#store.getSession(hashToken(token));
    // a session from before peer keys: its client must log in again to be given a ticket
    if (!session?.peerKey || session.userId !== userId) throw new GsError("UNAUTHORIZED", SESSION_ENDED);
    const peers = await this.#store.listPeers(groupId, name, userId, now);
    const ticketExpires = now + TICKET_TTL_MS;
    const ticket = signTicket(this.#signing.privateKey, {
      u: userId,
      g: groupId,
      f: fileId,
      k: session.peerKey,
      exp: ticketExpires,
    });
    return {
      ticket,
      ticketExpires,
      // a sharer without a key cannot prove who it is: never handed out
      peers: peers.flatMap((p) => {
        const addr = p.peerKey ? reachAddress(p, sourceIp(clientAddr), this.#trackers).addr : undefined;
        if (addr === undefined) return [];
        return [{ userId: p.userId, addr, key: p.peerKey!, complete: p.complete, nat: behindRouter(p) }];
      }),
    };
  }

  /** The user's signals after `after`, waiting up to SIGNAL_WAIT_MS for one. */
  async waitSignals(userId: string, after: number, aborted: AbortSignal): Promise<Answer<"signals">> {
    const found = await this.signals.wait(userId, after, SIGNAL_WAIT_MS, aborted);
    return {
      signals: found.flatMap((s) => {
        try {
          return [{ ...(JSON.parse(s.payload) as Omit<Signal, "seq">), seq: s.seq }];
        } catch {
          return []; // not ours to read: skip it
        }
      }),
    };
  }

  /**
   * A downloader cannot dial the sharer `sharerId`: the sharer is asked to dial the
   * downloader (at the address it would be handed out at, with its key), through
   * whichever tracker its client polls. Only for a member's online sharer of the file,
   * and only to where the tracker sees the downloader, or to its LAN address for a
   * sharer behind the same router (reachAddress): a downloader whose claim says it is
   * elsewhere is refused rather than dialled at a guess.
   */
  async reverse(userId: string, token: string, groupId: string, name: string, sharerId: string) {
    this.#admitReach(userId);
    const { session, sharer, fileId } = await this.#pathCheck(userId, token, groupId, name, sharerId);
    const seen = parseHostPort(sharer.peerAddr);
    const { addr, ignored } = reachAddress(
      session,
      typeof seen === "string" ? "" : seen.host,
      this.#trackers,
    );
    if (addr === undefined || ignored !== undefined) {
      throw new GsError(
        "PEER_ADDRESS_REFUSED",
        `'${sharerId}' is not sent to your peer address ${printable(session.claimedAddr)}: ${ignored ?? "it cannot be handed out"}`,
      );
    }
    await this.#signal(sharerId, { kind: "reverse", groupId, fileId, key: session.peerKey!, addr });
  }

  /** Counts a reversal or hole punch `userId` asks for; RATE_LIMITED past REACH_REQUESTS. */
  #admitReach(userId: string): void {
    const now = this.#now();
    const wait = this.#reachRequests.wait(now, userId);
    if (wait > 0) {
      throw new GsError(
        "RATE_LIMITED",
        `too many reversals and hole punches: try again in ${Math.max(1, Math.ceil(wait / 1000))} s`,
      );
    }
    this.#reachRequests.take(now, userId);
  }

  /**
   * No direct path between the downloader and the sharer `sharerId`: a circuit on this
   * tracker's relay for the two of them, and the sharer told to join it.
   */
  async relayFor(userId: string, token: string, groupId: string, name: string, sharerId: string) {
    if (!this.#self) throw new GsError("BUSY", "this tracker runs no relay");
    const { session, fileId } = await this.#pathCheck(userId, token, groupId, name, sharerId);
    const circuit = this.relay.open(userId, sharerId);
    const relay = formatHostPort(this.#self.host, this.#self.port);
    await this.#signal(sharerId, { kind: "relay", groupId, fileId, key: session.peerKey!, relay, circuit });
    return { relay, circuit };
  }

  /**
   * A hole punch between the downloader (whose call came from `observed`, the port it
   * will punch from) and the sharer `sharerId`, who is told to answer it here: the
   * sharer's address as seen, once it has answered.
   */
  async punch(
    userId: string,
    token: string,
    groupId: string,
    name: string,
    sharerId: string,
    observed: string,
  ) {
    if (!this.#self) throw new GsError("BUSY", "this tracker coordinates no hole punches");
    this.#admitReach(userId);
    const { session, fileId } = await this.#pathCheck(userId, token, groupId, name, sharerId);
    const { id, met } = this.#punches.open(userId, sharerId, observed, PUNCH_WAIT_MS);
    met.catch(() => {}); // awaited below, after the signal: a sharer that never answers must not go unhandled
    const tracker = formatHostPort(this.#self.host, this.#self.port);
    await this.#signal(sharerId, {
      kind: "punch",
      groupId,
      fileId,
      key: session.peerKey!,
      punch: id,
      tracker,
    });
    return { addr: await met };
  }

  /** The sharer answers hole punch `id` from `observed`: the downloader's address. */
  punchAnswer(userId: string, id: string, observed: string) {
    return { addr: this.#punches.answer(id, userId, observed) };
  }

  /** A reversal or relay is asked by a member with a keyed session, of an online sharer of the file. */
  async #pathCheck(userId: string, token: string, groupId: string, name: string, sharerId: string) {
    checkId("user id", sharerId);
    const file = await this.getFile(userId, groupId, name);
    const session = await this.#store.getSession(hashToken(token));
    if (!session?.peerKey || session.userId !== userId) throw new GsError("UNAUTHORIZED", SESSION_ENDED);
    const sharer = (await this.#store.listPeers(groupId, file.name, userId, this.#now())).find(
      (p) => p.userId === sharerId,
    );
    if (!sharer) throw new GsError("NOT_SHARING", `'${sharerId}' is not sharing '${file.name}' online now`);
    return { session, sharer, fileId: file.fileId };
  }

  async #signal(userId: string, payload: Omit<Signal, "seq">): Promise<void> {
    const now = this.#now();
    await this.#store.postSignal(userId, JSON.stringify(payload), now, now + SIGNAL_TTL_MS);
    this.signals.posted(userId);
  }
}

/** The sharer announced a specific IP other than the one its connections come from. */
function behindRouter(p: PeerRecord): boolean {
  const claimed = parseHostPort(p.claimedAddr);
  const seen = parseHostPort(p.peerAddr);
  if (typeof claimed === "string" || typeof seen === "string") return false;
  return claimed.host !== seen.host && claimed.host !== "0.0.0.0" && claimed.host !== "::";
}

/** A punch's downloader waits this long for the sharer's answer (its wake-up takes at most a second or so). */
const PUNCH_WAIT_MS = 5_000;

const SESSION_ENDED = "session ended: logged out, logged in from another client, or idle too long";

function checkPassword_(password: string): void {
  if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
    throw new GsError("BAD_REQUEST", `a password is 1-${MAX_PASSWORD_LENGTH} characters`);
  }
}
