import { PEER_TTL_MS } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { fileIdOf } from "../../shared/fileId.js";
import type { SqlDb } from "./sql.js";
import type {
  DeviceRecord,
  DeviceSummary,
  FileMeta,
  FileSummary,
  GroupRole,
  GroupPage,
  GroupQuery,
  JoinRequest,
  Member,
  LeaveResult,
  PeerRecord,
  SessionRecord,
  SigningKey,
  TlsIdentity,
  Store,
  StoredFile,
  ThrottleEntry,
  ThrottleRule,
  Usage,
  UserRecord,
} from "./store.js";
import { MAX_PENDING_SIGNALS, type Signal, THROTTLE_RETENTION_MS } from "./store.js";

/** A session is online while its last heartbeat is at most PEER_TTL_MS old. */
export function onlineSince(now: number): number {
  return now - PEER_TTL_MS;
}

/** Ids and names compare by code unit, the same on both databases whatever their collation. */
function byKey<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

interface FileRow {
  name: string;
  size: number;
  sha1: string;
  file_id: string;
  pieces?: Buffer;
}

/**
 * Every rule of the Store, once, over either SQL driver. A rule that reads and
 * then writes runs in one transaction (serializable on both drivers), so racing
 * trackers get one success and a GsError for the rest.
 */
export class SqlStore implements Store {
  constructor(readonly db: SqlDb) {}

  async createUser(user: UserRecord, now: number): Promise<void> {
    const { changes } = await this.db.run(
      "INSERT INTO users (user_id, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      [user.userId, user.passwordHash, now],
    );
    if (changes === 0) throw new GsError("USER_EXISTS", `user '${user.userId}' already exists`);
  }

  async getUser(userId: string): Promise<UserRecord | undefined> {
    const row = await this.db.get<{ password_hash: string }>(
      "SELECT password_hash FROM users WHERE user_id = ?",
      [userId],
    );
    return row && { userId, passwordHash: row.password_hash };
  }

  createSession(
    tokenHash: string,
    userId: string,
    peerAddr: string,
    now: number,
    claimedAddr = peerAddr,
    peerKey?: string,
  ): Promise<void> {
    return this.db.transaction(async (tx) => {
      if (!(await tx.get("SELECT 1 FROM users WHERE user_id = ?", [userId]))) {
        throw new GsError("USER_NOT_FOUND", `no user '${userId}'`);
      }
      await endSessions(tx, userId);
      await tx.run(
        "INSERT INTO sessions (token_hash, user_id, peer_addr, claimed_addr, peer_key, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [tokenHash, userId, peerAddr, claimedAddr, peerKey ?? null, now, now],
      );
    });
  }

  async getSession(tokenHash: string): Promise<SessionRecord | undefined> {
    const row = await this.db.get<{
      user_id: string;
      peer_addr: string;
      claimed_addr: string | null;
      peer_key: string | null;
      created_at: number;
      last_seen: number;
    }>(
      "SELECT user_id, peer_addr, claimed_addr, peer_key, created_at, last_seen FROM sessions WHERE token_hash = ?",
      [tokenHash],
    );
    return (
      row && {
        userId: row.user_id,
        peerAddr: row.peer_addr,
        claimedAddr: row.claimed_addr ?? row.peer_addr,
        ...(row.peer_key !== null && { peerKey: row.peer_key }),
        createdAt: row.created_at,
        lastSeen: row.last_seen,
      }
    );
  }

  async touchSession(tokenHash: string, now: number, aliveSince: number): Promise<boolean> {
    const { changes } = await this.db.run(
      "UPDATE sessions SET last_seen = ? WHERE token_hash = ? AND last_seen >= ?",
      [now, tokenHash, aliveSince],
    );
    return changes > 0;
  }

  expireSessions(idleSince: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      await tx.run("DELETE FROM shares WHERE user_id IN (SELECT user_id FROM sessions WHERE last_seen < ?)", [
        idleSince,
      ]);
      const { changes } = await tx.run("DELETE FROM sessions WHERE last_seen < ?", [idleSince]);
      return changes;
    });
  }

  deleteSession(tokenHash: string): Promise<void> {
    return this.db.transaction(async (tx) => {
      const row = await tx.get<{ user_id: string }>("SELECT user_id FROM sessions WHERE token_hash = ?", [
        tokenHash,
      ]);
      if (row) await endSessions(tx, row.user_id);
    });
  }

  addDevice(userId: string, d: Omit<DeviceRecord, "lastUsed">, max: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      if (!(await tx.get("SELECT 1 FROM users WHERE user_id = ?", [userId]))) {
        throw new GsError("USER_NOT_FOUND", `no user '${userId}'`);
      }
      const row = await tx.get<{ n: number }>("SELECT COUNT(*) AS n FROM devices WHERE user_id = ?", [
        userId,
      ]);
      if (Number(row?.n ?? 0) >= max) {
        throw new GsError(
          "QUOTA_EXCEEDED",
          `you have ${max} remembered devices, the most one user may: revoke one you no longer use`,
        );
      }
      await tx.run(
        "INSERT INTO devices (user_id, device_id, secret_hash, name, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)",
        [userId, d.deviceId, d.secretHash, d.name, d.createdAt, d.createdAt],
      );
    });
  }

  async getDevice(userId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    const row = await this.db.get<DeviceRow & { secret_hash: string }>(
      "SELECT device_id, secret_hash, name, created_at, last_used_at FROM devices WHERE user_id = ? AND device_id = ?",
      [userId, deviceId],
    );
    return row && { ...deviceOf(row), secretHash: row.secret_hash };
  }

  async useDevice(userId: string, deviceId: string, now: number): Promise<boolean> {
    const { changes } = await this.db.run(
      "UPDATE devices SET last_used_at = ? WHERE user_id = ? AND device_id = ?",
      [now, userId, deviceId],
    );
    return changes > 0;
  }

  async listDevices(userId: string): Promise<DeviceSummary[]> {
    const rows = await this.db.all<DeviceRow>(
      "SELECT device_id, name, created_at, last_used_at FROM devices WHERE user_id = ? ORDER BY created_at, device_id",
      [userId],
    );
    return rows.map(deviceOf);
  }

  async revokeDevice(userId: string, deviceId: string): Promise<boolean> {
    const { changes } = await this.db.run("DELETE FROM devices WHERE user_id = ? AND device_id = ?", [
      userId,
      deviceId,
    ]);
    return changes > 0;
  }

  createGroup(groupId: string, owner: string, now: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      const { changes } = await tx.run(
        "INSERT INTO user_groups (group_id, owner, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [groupId, owner, now],
      );
      if (changes === 0) throw new GsError("GROUP_EXISTS", `group '${groupId}' already exists`);
      await tx.run("INSERT INTO members (group_id, user_id, joined_at) VALUES (?, ?, ?)", [
        groupId,
        owner,
        now,
      ]);
    });
  }

  async listGroups(userId: string, { prefix, limit }: GroupQuery): Promise<GroupPage> {
    // Prefix by characters, not a range on the id: PostgreSQL's collation need not be
    // bytewise. Ids are ASCII (ID_PATTERN), so COLLATE "C" orders them as SQLite does.
    const matches = "substr(g.group_id, 1, ?) = ?";
    const match = [prefix.length, prefix];
    const byId = this.db.dialect === "postgres" ? 'g.group_id COLLATE "C"' : "g.group_id";
    const involved = `(g.owner = ?
      OR EXISTS (SELECT 1 FROM members m WHERE m.group_id = g.group_id AND m.user_id = ?)
      OR EXISTS (SELECT 1 FROM join_requests r WHERE r.group_id = g.group_id AND r.user_id = ?))`;
    const me = [userId, userId, userId];
    const page = (where: string, n: number) =>
      this.db.all<{ group_id: string; owner: string; members: number; role: GroupRole }>(
        `SELECT g.group_id, g.owner,
           (SELECT COUNT(*) FROM members m WHERE m.group_id = g.group_id) AS members,
           CASE
             WHEN g.owner = ? THEN 'owner'
             WHEN EXISTS (SELECT 1 FROM members m WHERE m.group_id = g.group_id AND m.user_id = ?) THEN 'member'
             WHEN EXISTS (SELECT 1 FROM join_requests r WHERE r.group_id = g.group_id AND r.user_id = ?) THEN 'pending'
             ELSE 'none'
           END AS role
         FROM (SELECT g.group_id, g.owner FROM user_groups g
               WHERE ${matches} AND ${where} ORDER BY ${byId} LIMIT ?) g
         ORDER BY ${byId}`,
        [...me, ...match, ...me, n],
      );
    const own = await page(involved, limit);
    const others = own.length < limit ? await page(`NOT ${involved}`, limit - own.length) : [];
    const total = await this.db.get<{ n: number }>(
      `SELECT COUNT(*) AS n FROM user_groups g WHERE ${matches}`,
      match,
    );
    return {
      groups: [...own, ...others].map((r) => ({
        groupId: r.group_id,
        owner: r.owner,
        members: Number(r.members),
        role: r.role,
      })),
      total: Number(total?.n ?? 0),
    };
  }

  requestJoin(groupId: string, userId: string, now: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      await groupOwner(tx, groupId);
      if (await isMember(tx, groupId, userId)) {
        throw new GsError("ALREADY_MEMBER", `you are already a member of '${groupId}'`);
      }
      if (await tx.get("SELECT 1 FROM join_requests WHERE group_id = ? AND user_id = ?", [groupId, userId])) {
        throw new GsError("REQUEST_EXISTS", `your request to join '${groupId}' is pending`);
      }
      await tx.run("INSERT INTO join_requests (group_id, user_id, requested_at) VALUES (?, ?, ?)", [
        groupId,
        userId,
        now,
      ]);
    });
  }

  async listRequests(groupId: string, ownerId: string): Promise<JoinRequest[]> {
    await assertOwner(this.db, groupId, ownerId);
    const rows = await this.db.all<{ user_id: string; requested_at: number }>(
      "SELECT user_id, requested_at FROM join_requests WHERE group_id = ? ORDER BY requested_at, seq",
      [groupId],
    );
    return rows.map((r) => ({ userId: r.user_id, requestedAt: r.requested_at }));
  }

  async listMembers(groupId: string, userId: string): Promise<Member[]> {
    await assertMember(this.db, groupId, userId);
    const rows = await this.db.all<{ user_id: string; joined_at: number; owner: string }>(
      `SELECT m.user_id, m.joined_at, g.owner FROM members m JOIN user_groups g ON g.group_id = m.group_id
       WHERE m.group_id = ? ORDER BY m.seq`,
      [groupId],
    );
    const role = (r: { user_id: string; owner: string }) => (r.user_id === r.owner ? "owner" : "member");
    return rows
      .map((r) => ({ userId: r.user_id, joinedAt: Number(r.joined_at), role: role(r) }) as const)
      .sort((a, b) => (a.role === b.role ? 0 : a.role === "owner" ? -1 : 1));
  }

  acceptRequest(groupId: string, ownerId: string, userId: string, now: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      await assertOwner(tx, groupId, ownerId);
      if (await isMember(tx, groupId, userId)) {
        throw new GsError("ALREADY_MEMBER", `'${userId}' is already a member of '${groupId}'`);
      }
      const { changes } = await tx.run("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?", [
        groupId,
        userId,
      ]);
      if (changes === 0) {
        throw new GsError("REQUEST_NOT_FOUND", `'${userId}' has not asked to join '${groupId}'`);
      }
      await tx.run("INSERT INTO members (group_id, user_id, joined_at) VALUES (?, ?, ?)", [
        groupId,
        userId,
        now,
      ]);
    });
  }

  async rejectRequest(groupId: string, ownerId: string, userId: string): Promise<void> {
    await assertOwner(this.db, groupId, ownerId);
    const { changes } = await this.db.run("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?", [
      groupId,
      userId,
    ]);
    if (changes === 0)
      throw new GsError("REQUEST_NOT_FOUND", `'${userId}' has not asked to join '${groupId}'`);
  }

  removeMember(groupId: string, ownerId: string, userId: string): Promise<void> {
    return this.db.transaction(async (tx) => {
      await assertOwner(tx, groupId, ownerId);
      if (userId === ownerId) {
        throw new GsError("CANNOT_REMOVE_OWNER", `you own '${groupId}': you cannot remove yourself`);
      }
      await tx.run("DELETE FROM shares WHERE group_id = ? AND user_id = ?", [groupId, userId]);
      const { changes } = await tx.run("DELETE FROM members WHERE group_id = ? AND user_id = ?", [
        groupId,
        userId,
      ]);
      if (changes === 0) throw new GsError("MEMBER_NOT_FOUND", `'${userId}' is not a member of '${groupId}'`);
    });
  }

  leaveGroup(groupId: string, userId: string): Promise<LeaveResult> {
    return this.db.transaction(async (tx) => {
      const owner = await groupOwner(tx, groupId);
      if (!(await isMember(tx, groupId, userId))) {
        const { changes } = await tx.run("DELETE FROM join_requests WHERE group_id = ? AND user_id = ?", [
          groupId,
          userId,
        ]);
        if (changes === 0) throw new GsError("NOT_MEMBER", `you are not a member of '${groupId}'`);
        return { deleted: false, withdrawn: true };
      }
      await tx.run("DELETE FROM shares WHERE group_id = ? AND user_id = ?", [groupId, userId]);
      await tx.run("DELETE FROM members WHERE group_id = ? AND user_id = ?", [groupId, userId]);
      const next = await tx.get<{ user_id: string }>(
        "SELECT user_id FROM members WHERE group_id = ? ORDER BY seq LIMIT 1",
        [groupId],
      );
      if (!next) {
        // files, shares and requests go with it (ON DELETE CASCADE)
        await tx.run("DELETE FROM user_groups WHERE group_id = ?", [groupId]);
        return { deleted: true };
      }
      if (owner !== userId) return { deleted: false };
      await tx.run("UPDATE user_groups SET owner = ? WHERE group_id = ?", [next.user_id, groupId]);
      return { newOwner: next.user_id, deleted: false };
    });
  }

  async assertMember(groupId: string, userId: string): Promise<void> {
    await assertMember(this.db, groupId, userId);
  }

  addFile(groupId: string, userId: string, file: FileMeta, complete: boolean, now: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      await assertMember(tx, groupId, userId);
      const fileId = fileIdOf(file.size, file.pieces);
      const existing = await tx.get<FileRow>(
        "SELECT name, size, sha1, file_id FROM files WHERE group_id = ? AND name = ?",
        [groupId, file.name],
      );
      if (!existing) {
        await tx.run(
          "INSERT INTO files (group_id, name, size, sha1, file_id, pieces, added_by, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          [groupId, file.name, file.size, file.sha1, fileId, file.pieces, userId, now],
        );
      } else if (existing.sha1 !== file.sha1 || existing.file_id !== fileId) {
        throw new GsError("FILE_EXISTS", `another file is named '${file.name}' in '${groupId}'`);
      }
      await upsertShare(tx, groupId, file.name, userId, complete, now);
    });
  }

  async listFiles(groupId: string, userId: string, now: number): Promise<FileSummary[]> {
    // membership is part of the query: a member with files costs one round trip
    const rows = await this.db.all<{
      name: string;
      size: number;
      sha1: string;
      file_id: string;
      sharers: number;
      seeders: number;
    }>(
      `SELECT f.name, f.size, f.sha1, f.file_id,
         COUNT(se.user_id) AS sharers,
         COUNT(CASE WHEN se.user_id IS NOT NULL AND s.complete = 1 THEN 1 END) AS seeders
       FROM files f
       LEFT JOIN shares s ON s.group_id = f.group_id AND s.name = f.name
       LEFT JOIN sessions se ON se.user_id = s.user_id AND se.last_seen >= ?
       WHERE f.group_id = ?
         AND EXISTS (SELECT 1 FROM members m WHERE m.group_id = f.group_id AND m.user_id = ?)
       GROUP BY f.group_id, f.name, f.size, f.sha1, f.file_id`,
      [onlineSince(now), groupId, userId],
    );
    // no rows: no such group, not a member, or simply no files yet
    if (rows.length === 0) await assertMember(this.db, groupId, userId);
    return rows
      .map((r) => ({
        name: r.name,
        size: r.size,
        sha1: r.sha1,
        fileId: r.file_id,
        sharersOnline: r.sharers,
        seedersOnline: r.seeders,
      }))
      .sort(byKey((f) => f.name));
  }

  async getFile(groupId: string, name: string, userId: string): Promise<StoredFile> {
    await assertMember(this.db, groupId, userId);
    const row = await fileRow(this.db, groupId, name, true);
    return {
      name: row.name,
      size: row.size,
      sha1: row.sha1,
      fileId: row.file_id,
      pieces: Buffer.from(row.pieces!),
    };
  }

  /** Also GROUP_NOT_FOUND, NOT_MEMBER, FILE_NOT_FOUND: only members learn who shares what. */
  async listPeers(groupId: string, name: string, userId: string, now: number): Promise<PeerRecord[]> {
    await assertMember(this.db, groupId, userId);
    await fileRow(this.db, groupId, name);
    const rows = await this.db.all<{
      user_id: string;
      peer_addr: string;
      claimed_addr: string | null;
      peer_key: string | null;
      complete: number;
    }>(
      `SELECT s.user_id, se.peer_addr, se.claimed_addr, se.peer_key, s.complete
       FROM shares s JOIN sessions se ON se.user_id = s.user_id
       WHERE s.group_id = ? AND s.name = ? AND s.user_id <> ? AND se.last_seen >= ?`,
      [groupId, name, userId, onlineSince(now)],
    );
    return rows
      .map((r) => ({
        userId: r.user_id,
        peerAddr: r.peer_addr,
        claimedAddr: r.claimed_addr ?? r.peer_addr,
        ...(r.peer_key !== null && { peerKey: r.peer_key }),
        complete: r.complete === 1,
      }))
      .sort(byKey((p) => p.userId));
  }

  addShare(groupId: string, name: string, userId: string, complete: boolean, now: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      await assertMember(tx, groupId, userId);
      await fileRow(tx, groupId, name);
      await upsertShare(tx, groupId, name, userId, complete, now);
    });
  }

  async removeShare(groupId: string, name: string, userId: string): Promise<void> {
    const { changes } = await this.db.run(
      "DELETE FROM shares WHERE group_id = ? AND name = ? AND user_id = ?",
      [groupId, name, userId],
    );
    if (changes === 0) throw new GsError("NOT_SHARING", `you are not sharing '${name}' in '${groupId}'`);
  }

  async signingKey(generated: SigningKey): Promise<SigningKey> {
    const [publicKey, privateKey] = await this.#firstStored(
      "signing_keys",
      ["public_key", "private_key"],
      [generated.publicKey, generated.privateKey],
    );
    return { publicKey, privateKey };
  }

  async tlsIdentity(generated: TlsIdentity): Promise<TlsIdentity> {
    const [certificate, privateKey] = await this.#firstStored(
      "tls_identity",
      ["certificate", "private_key"],
      [generated.certificate, generated.privateKey],
    );
    return { certificate, privateKey };
  }

  postSignal(userId: string, payload: string, now: number, expiresAt: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run("DELETE FROM signals WHERE expires_at < ?", [now]);
      const row = await tx.get<{ n: number }>("SELECT COUNT(*) AS n FROM signals WHERE user_id = ?", [
        userId,
      ]);
      if (Number(row?.n ?? 0) >= MAX_PENDING_SIGNALS) {
        throw new GsError("BUSY", `'${userId}' has ${MAX_PENDING_SIGNALS} requests waiting: try again later`);
      }
      await tx.run("INSERT INTO signals (user_id, payload, expires_at) VALUES (?, ?, ?)", [
        userId,
        payload,
        expiresAt,
      ]);
    });
  }

  async takeSignals(userId: string, after: number, now: number, limit: number): Promise<Signal[]> {
    await this.db.run("DELETE FROM signals WHERE user_id = ? AND (seq <= ? OR expires_at < ?)", [
      userId,
      after,
      now,
    ]);
    const rows = await this.db.all<{ seq: number | string; payload: string }>(
      "SELECT seq, payload FROM signals WHERE user_id = ? ORDER BY seq LIMIT ?",
      [userId, limit],
    );
    return rows.map((r) => ({ seq: Number(r.seq), payload: r.payload }));
  }

  async signalsAfter(after: number, limit: number): Promise<{ last: number; users: string[] }> {
    const top = await this.db.get<{ last: number | string | null }>("SELECT MAX(seq) AS last FROM signals");
    const rows = await this.db.all<{ user_id: string }>(
      "SELECT DISTINCT user_id FROM signals WHERE seq > ? LIMIT ?",
      [after, limit],
    );
    return { last: Math.max(after, Number(top?.last ?? 0)), users: rows.map((r) => r.user_id) };
  }

  /** A one-row table's values: `generated` if it was empty, else what the first caller stored. */
  #firstStored(table: string, columns: string[], generated: string[]): Promise<string[]> {
    return this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO ${table} (id, ${columns.join(", ")}) VALUES (1, ${columns.map(() => "?").join(", ")}) ON CONFLICT DO NOTHING`,
        generated,
      );
      const row = await tx.get<Record<string, string>>(
        `SELECT ${columns.join(", ")} FROM ${table} WHERE id = 1`,
      );
      return columns.map((c) => row![c]!);
    });
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // Login throttle, trusted addresses, password upgrades and quotas.

  admitAttempt(rules: readonly ThrottleRule[], now: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      const entries = await Promise.all(rules.map((r) => throttleRow(tx, r.key)));
      const wait = Math.max(0, ...entries.map((e) => (e ? e.blockedUntil - now : 0)));
      if (wait > 0) return wait;
      for (const [i, rule] of rules.entries()) {
        const failures = (entries[i]?.failures ?? 0) + 1;
        const block = blockFor(rule, failures);
        await putThrottleRow(tx, rule.key, failures, block > 0 ? now + block : 0, now);
      }
      // a few stale entries go with every admitted attempt: the table holds about an hour's
      await tx.run(
        `DELETE FROM login_attempts WHERE throttle_key IN
           (SELECT throttle_key FROM login_attempts WHERE forget_at < ? ORDER BY forget_at LIMIT 20)`,
        [now],
      );
      return 0;
    });
  }

  attemptSucceeded(reset: readonly string[], refund: readonly ThrottleRule[], now: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      for (const key of reset) await tx.run("DELETE FROM login_attempts WHERE throttle_key = ?", [key]);
      for (const rule of refund) {
        const e = await throttleRow(tx, rule.key);
        if (!e) continue;
        const failures = Math.max(0, e.failures - 1);
        // below the free count no block is left; above it, the failures before this one keep theirs
        await putThrottleRow(tx, rule.key, failures, failures < rule.free ? 0 : e.blockedUntil, now);
      }
    });
  }

  throttleEntry(key: string): Promise<ThrottleEntry | undefined> {
    return throttleRow(this.db, key);
  }

  trustAddress(userId: string, addr: string, now: number, keep: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO trusted_addresses (user_id, addr, last_success) VALUES (?, ?, ?)
         ON CONFLICT (user_id, addr) DO UPDATE SET last_success = excluded.last_success`,
        [userId, addr, now],
      );
      await tx.run(
        `DELETE FROM trusted_addresses WHERE user_id = ? AND addr NOT IN
           (SELECT addr FROM trusted_addresses WHERE user_id = ? ORDER BY last_success DESC, addr LIMIT ?)`,
        [userId, userId, keep],
      );
    });
  }

  async isTrustedAddress(userId: string, addr: string, since: number): Promise<boolean> {
    const row = await this.db.get(
      "SELECT 1 FROM trusted_addresses WHERE user_id = ? AND addr = ? AND last_success >= ?",
      [userId, addr, since],
    );
    return row !== undefined;
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    const { changes } = await this.db.run("UPDATE users SET password_hash = ? WHERE user_id = ?", [
      passwordHash,
      userId,
    ]);
    if (changes === 0) throw new GsError("USER_NOT_FOUND", `no user '${userId}'`);
  }

  async usage(userId: string): Promise<Usage> {
    // LENGTH of a blob reads its header, not the blob, in both databases
    const row = await this.db.get<{ owned_groups: number; files: number; piece_bytes: number | null }>(
      `SELECT (SELECT COUNT(*) FROM user_groups WHERE owner = ?) AS owned_groups,
         (SELECT COUNT(*) FROM files WHERE added_by = ?) AS files,
         (SELECT SUM(LENGTH(pieces)) FROM files WHERE added_by = ?) AS piece_bytes`,
      [userId, userId, userId],
    );
    return {
      groups: Number(row?.owned_groups ?? 0),
      files: Number(row?.files ?? 0),
      pieceBytes: Number(row?.piece_bytes ?? 0),
    };
  }
}

interface DeviceRow {
  device_id: string;
  name: string;
  created_at: number;
  last_used_at: number;
}

function deviceOf(r: DeviceRow): DeviceSummary {
  return {
    deviceId: r.device_id,
    name: r.name,
    createdAt: r.created_at,
    lastUsed: r.last_used_at,
  };
}

/** The block an entry gets once `failures` attempts have been counted. */
function blockFor(rule: ThrottleRule, failures: number): number {
  if (failures < rule.free) return 0;
  // the exponent is bounded long before the cap matters, so the product stays finite
  return Math.min(rule.maxBlockMs, rule.baseBlockMs * 2 ** Math.min(failures - rule.free, 40));
}

async function throttleRow(db: SqlDb, key: string): Promise<ThrottleEntry | undefined> {
  const row = await db.get<{ failures: number; blocked_until: number }>(
    "SELECT failures, blocked_until FROM login_attempts WHERE throttle_key = ?",
    [key],
  );
  return row && { failures: Number(row.failures), blockedUntil: Number(row.blocked_until) };
}

async function putThrottleRow(
  tx: SqlDb,
  key: string,
  failures: number,
  blockedUntil: number,
  now: number,
): Promise<void> {
  await tx.run(
    `INSERT INTO login_attempts (throttle_key, failures, blocked_until, forget_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (throttle_key) DO UPDATE SET failures = excluded.failures,
       blocked_until = excluded.blocked_until, forget_at = excluded.forget_at`,
    [key, failures, blockedUntil, Math.max(now, blockedUntil) + THROTTLE_RETENTION_MS],
  );
}

/** The user's session ends and with it every share and signal: a new client announces its own. */
async function endSessions(tx: SqlDb, userId: string): Promise<void> {
  await tx.run("DELETE FROM signals WHERE user_id = ?", [userId]);
  await tx.run("DELETE FROM shares WHERE user_id = ?", [userId]);
  await tx.run("DELETE FROM sessions WHERE user_id = ?", [userId]);
}

/** The group's owner; GROUP_NOT_FOUND. */
async function groupOwner(db: SqlDb, groupId: string): Promise<string> {
  const row = await db.get<{ owner: string }>("SELECT owner FROM user_groups WHERE group_id = ?", [groupId]);
  if (!row) throw new GsError("GROUP_NOT_FOUND", `no group '${groupId}'`);
  return row.owner;
}

async function isMember(db: SqlDb, groupId: string, userId: string): Promise<boolean> {
  return (
    (await db.get("SELECT 1 FROM members WHERE group_id = ? AND user_id = ?", [groupId, userId])) !==
    undefined
  );
}

/** GROUP_NOT_FOUND, NOT_MEMBER; one statement: it runs before every read of a group (list_files, downloads). */
async function assertMember(db: SqlDb, groupId: string, userId: string): Promise<void> {
  const row = await db.get<{ member: number }>(
    `SELECT (SELECT COUNT(*) FROM members WHERE group_id = ? AND user_id = ?) AS member
     FROM user_groups WHERE group_id = ?`,
    [groupId, userId, groupId],
  );
  if (!row) throw new GsError("GROUP_NOT_FOUND", `no group '${groupId}'`);
  if (Number(row.member) === 0) {
    // a request just made is the likely case: say so rather than "join first"
    const pending = await db.get("SELECT 1 FROM join_requests WHERE group_id = ? AND user_id = ?", [
      groupId,
      userId,
    ]);
    if (pending !== undefined) {
      throw new GsError(
        "NOT_MEMBER",
        `your request to join '${groupId}' is pending: the owner must accept it before you see its files`,
      );
    }
    throw new GsError("NOT_MEMBER", `you are not a member of '${groupId}'`);
  }
}

async function assertOwner(db: SqlDb, groupId: string, userId: string): Promise<void> {
  if ((await groupOwner(db, groupId)) !== userId) {
    throw new GsError("NOT_OWNER", `only the owner of '${groupId}' can do this`);
  }
}

/** The file's row; the piece list (up to 2.6 MB) only when asked for. */
async function fileRow(db: SqlDb, groupId: string, name: string, withPieces = false): Promise<FileRow> {
  const row = await db.get<FileRow>(
    `SELECT name, size, sha1, file_id${withPieces ? ", pieces" : ""} FROM files WHERE group_id = ? AND name = ?`,
    [groupId, name],
  );
  if (!row) throw new GsError("FILE_NOT_FOUND", `no file '${name}' in '${groupId}'`);
  return row;
}

async function upsertShare(
  tx: SqlDb,
  groupId: string,
  name: string,
  userId: string,
  complete: boolean,
  now: number,
): Promise<void> {
  await tx.run(
    `INSERT INTO shares (group_id, name, user_id, complete, since) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (group_id, name, user_id) DO UPDATE SET complete = excluded.complete`,
    [groupId, name, userId, complete ? 1 : 0, now],
  );
}
