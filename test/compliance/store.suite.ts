import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { PEER_TTL_MS } from "../../src/shared/constants.js";
import { type ErrorCode, GsError } from "../../src/shared/errors.js";
import { fileIdOf } from "../../src/shared/fileId.js";
import { MIGRATIONS, migrate } from "../../src/tracker/store/migrations.js";
import type { SqlDb } from "../../src/tracker/store/sql.js";
import {
  MAX_PENDING_SIGNALS,
  type StoredFile,
  type Store,
  THROTTLE_RETENTION_MS,
  type ThrottleRule,
} from "../../src/tracker/store/store.js";

const T0 = 1_700_000_000_000;

async function rejectsWith(promise: Promise<unknown>, ...codes: ErrorCode[]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof GsError, `expected a GsError, got ${String(err)}`);
    assert.ok(codes.includes(err.code), `expected ${codes.join(" or ")}, got ${err.code}`);
    return true;
  });
}

/** Exactly one of the racing calls succeeded; every other failed with one of `codes`. */
function assertOneWinner(results: PromiseSettledResult<unknown>[], ...codes: ErrorCode[]): void {
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  for (const r of results) {
    if (r.status === "rejected") {
      assert.ok(r.reason instanceof GsError, `expected a GsError, got ${String(r.reason)}`);
      assert.ok(codes.includes(r.reason.code), `expected ${codes.join(" or ")}, got ${r.reason.code}`);
    }
  }
}

function fileOf(name: string, content: string, size = content.length): StoredFile {
  const sha1 = createHash("sha1").update(content).digest();
  const pieces = Buffer.concat([sha1, sha1]);
  return { name, size, sha1: sha1.toString("hex"), fileId: fileIdOf(size, pieces), pieces };
}

/**
 * One suite for every Store (DESIGN.md "Store"). `open` gives a new instance on
 * the same database each call (data persists between them); `cleanup` removes the
 * database once every instance is closed. Tests share the database, so each
 * works under its own id prefix.
 */
export function storeComplianceSuite(
  name: string,
  open: () => Promise<Store>,
  cleanup: () => Promise<void>,
): void {
  describe(`Store compliance: ${name}`, () => {
    let store: Store;
    let tags = 0;
    let tokens = 0;

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
      await cleanup();
    });

    /** A prefix no other test uses; ids stay within 32 characters. */
    const tag = () => `t${++tags}`;

    async function users(...ids: string[]): Promise<void> {
      for (const id of ids) await store.createUser({ userId: id, passwordHash: `hash-${id}` }, T0);
    }

    async function login(userId: string, now = T0, peerAddr = `127.0.0.1:${1000 + tokens}`): Promise<string> {
      const token = `token-${++tokens}`;
      await store.createSession(token, userId, peerAddr, now);
      return token;
    }

    /** A group owned by `owner` with `members` accepted in order; creates the users. */
    async function group(groupId: string, owner: string, members: string[] = [], now = T0): Promise<void> {
      await users(owner, ...members);
      await store.createGroup(groupId, owner, now);
      for (const m of members) {
        await store.requestJoin(groupId, m, now);
        await store.acceptRequest(groupId, owner, m, now);
      }
    }

    /** The group as `userId` sees it in listGroups. */
    async function groupAs(userId: string, groupId: string) {
      const { groups } = await store.listGroups(userId, { prefix: groupId, limit: 100 });
      return groups.find((g) => g.groupId === groupId);
    }

    async function withSecondStore<T>(fn: (other: Store) => Promise<T>): Promise<T> {
      const other = await open();
      try {
        return await fn(other);
      } finally {
        await other.close();
      }
    }

    describe("users", () => {
      it("stores a user and refuses a taken id", async () => {
        const u = `${tag()}-ann`;
        await store.createUser({ userId: u, passwordHash: "h1" }, T0);
        assert.deepEqual(await store.getUser(u), { userId: u, passwordHash: "h1" });
        await rejectsWith(store.createUser({ userId: u, passwordHash: "h2" }, T0), "USER_EXISTS");
        assert.equal((await store.getUser(u))?.passwordHash, "h1");
      });

      it("has no record of an unknown user", async () => {
        assert.equal(await store.getUser(`${tag()}-nobody`), undefined);
      });
    });

    describe("sessions", () => {
      it("creates, reads and touches a session", async () => {
        const u = `${tag()}-ann`;
        await users(u);
        const token = await login(u, T0, "10.0.0.1:5000");
        assert.deepEqual(await store.getSession(token), {
          userId: u,
          peerAddr: "10.0.0.1:5000",
          claimedAddr: "10.0.0.1:5000",
          createdAt: T0,
          lastSeen: T0,
        });
        assert.equal(await store.touchSession(token, T0 + 5, 0), true);
        assert.equal((await store.getSession(token))?.lastSeen, T0 + 5);
        assert.equal(await store.touchSession("no-such-token", T0, 0), false);
      });

      it("an idle session cannot be touched, and expiring deletes it with its shares", async () => {
        // long before every other test's sessions, which expiring must leave alone
        const B = T0 - 1e9;
        const t = tag();
        const [own, ann, bob] = [`${t}-own`, `${t}-ann`, `${t}-bob`];
        await group(t, own, [ann, bob], B);
        await login(own, B + 1_000);
        const idle = await login(ann, B);
        const beating = await login(bob, B + 200);
        await store.addFile(t, ann, fileOf("a.txt", "a"), true, B);
        await store.addFile(t, bob, fileOf("a.txt", "a"), true, B);
        assert.equal(await store.touchSession(beating, B + 500, B + 100), true);
        assert.equal(await store.touchSession(idle, B + 500, B + 100), false, "idle since before aliveSince");
        assert.equal(await store.expireSessions(B + 100), 1);
        assert.equal(await store.getSession(idle), undefined);
        assert.ok(await store.getSession(beating));
        assert.deepEqual(
          (await store.listPeers(t, "a.txt", own, B + 500)).map((p) => p.userId),
          [bob],
        );
        // a new login of the idle user starts afresh, without the old shares
        await login(ann, B + 600);
        assert.deepEqual(
          (await store.listPeers(t, "a.txt", own, B + 600)).map((p) => p.userId),
          [bob],
        );
      });

      it("keeps the claimed address beside the handed-out one", async () => {
        const u = `${tag()}-ann`;
        await users(u);
        await store.createSession(`${u}-tok`, u, "10.0.0.2:6001", T0, "0.0.0.0:6001");
        const s = await store.getSession(`${u}-tok`);
        assert.equal(s?.peerAddr, "10.0.0.2:6001");
        assert.equal(s?.claimedAddr, "0.0.0.0:6001");
        assert.equal(s?.peerKey, undefined);
      });

      it("keeps the session's peer key and hands it out with the sharer's address; a new login replaces it", async () => {
        const t = tag();
        const [own, bob] = [`${t}-own`, `${t}-bob`];
        await group(t, own, [bob]);
        await store.createSession(`${t}-tok1`, own, "10.0.0.2:6001", T0, "10.0.0.2:6001", "key-one");
        await login(bob);
        assert.equal((await store.getSession(`${t}-tok1`))?.peerKey, "key-one");
        await store.addFile(t, own, fileOf("a.txt", "one"), true, T0);
        assert.deepEqual(
          (await store.listPeers(t, "a.txt", bob, T0)).map((p) => [p.userId, p.peerAddr, p.peerKey]),
          [[own, "10.0.0.2:6001", "key-one"]],
        );
        await store.createSession(`${t}-tok2`, own, "10.0.0.3:6001", T0, "10.0.0.3:6001", "key-two");
        await store.addShare(t, "a.txt", own, true, T0);
        assert.deepEqual(
          (await store.listPeers(t, "a.txt", bob, T0)).map((p) => p.peerKey),
          ["key-two"],
        );
      });

      it("refuses a session for an unknown user", async () => {
        await rejectsWith(
          store.createSession("tok-unknown", `${tag()}-ghost`, "1.2.3.4:1", T0),
          "USER_NOT_FOUND",
        );
      });

      it("a second login replaces the first and clears the user's shares", async () => {
        const t = tag();
        const [owner, ann] = [`${t}-own`, `${t}-ann`];
        await group(t, owner, [ann]);
        const first = await login(ann, T0, "10.0.0.1:1");
        await login(owner);
        await store.addFile(t, ann, fileOf("a.txt", "a"), true, T0);
        const second = await login(ann, T0 + 1, "10.0.0.2:2");
        assert.equal(await store.getSession(first), undefined);
        assert.equal(await store.touchSession(first, T0 + 2, 0), false);
        assert.equal((await store.getSession(second))?.peerAddr, "10.0.0.2:2");
        assert.deepEqual(await store.listPeers(t, "a.txt", owner, T0 + 2), []);
        assert.equal((await store.listFiles(t, owner, T0 + 2))[0]?.sharersOnline, 0);
      });

      it("logout ends the session and clears the user's shares", async () => {
        const t = tag();
        const [owner, ann] = [`${t}-own`, `${t}-ann`];
        await group(t, owner, [ann]);
        const token = await login(ann);
        await store.addFile(t, ann, fileOf("a.txt", "a"), true, T0);
        await store.deleteSession(token);
        assert.equal(await store.getSession(token), undefined);
        assert.equal(await store.touchSession(token, T0, 0), false);
        const again = await login(ann);
        assert.ok(await store.getSession(again));
        // the share did not come back with the new session
        assert.deepEqual(await store.listPeers(t, "a.txt", owner, T0), []);
        await store.deleteSession("no-such-token");
      });
    });

    describe("remembered devices", () => {
      const device = (deviceId: string, createdAt = T0) => ({
        deviceId,
        secretHash: `hash-of-${deviceId}`,
        name: `laptop ${deviceId}`,
        createdAt,
      });

      it("keeps a user's devices, lists them oldest first without their hashes, and records each use", async () => {
        const t = tag();
        const [ann, bob] = [`${t}-ann`, `${t}-bob`];
        await users(ann, bob);
        await store.addDevice(ann, device("d2", T0 + 5), 20);
        await store.addDevice(ann, device("d1", T0 + 9), 20);
        assert.deepEqual(await store.getDevice(ann, "d2"), {
          deviceId: "d2",
          secretHash: "hash-of-d2",
          name: "laptop d2",
          createdAt: T0 + 5,
          lastUsed: T0 + 5,
        });
        assert.equal(await store.useDevice(ann, "d2", T0 + 100), true);
        assert.deepEqual(await store.listDevices(ann), [
          { deviceId: "d2", name: "laptop d2", createdAt: T0 + 5, lastUsed: T0 + 100 },
          { deviceId: "d1", name: "laptop d1", createdAt: T0 + 9, lastUsed: T0 + 9 },
        ]);
        // a device is its user's alone: another user neither finds nor uses it by its id
        assert.equal(await store.getDevice(bob, "d2"), undefined);
        assert.equal(await store.useDevice(bob, "d2", T0 + 200), false);
        assert.deepEqual(await store.listDevices(bob), []);
        assert.equal((await store.getDevice(ann, "d2"))?.lastUsed, T0 + 100);
      });

      it("bounds the devices of one user; USER_NOT_FOUND for nobody", async () => {
        const t = tag();
        const [ann, bob] = [`${t}-ann`, `${t}-bob`];
        await users(ann, bob);
        await store.addDevice(ann, device("a1"), 2);
        await store.addDevice(ann, device("a2"), 2);
        await rejectsWith(store.addDevice(ann, device("a3"), 2), "QUOTA_EXCEEDED");
        await store.addDevice(bob, device("b1"), 2); // another user's bound is their own
        assert.equal(await store.revokeDevice(ann, "a1"), true);
        await store.addDevice(ann, device("a3"), 2);
        assert.deepEqual(
          (await store.listDevices(ann)).map((d) => d.deviceId),
          ["a2", "a3"],
        );
        await rejectsWith(store.addDevice(`${t}-nobody`, device("n1"), 2), "USER_NOT_FOUND");
      });

      it("a revoked device is gone for good, and only its own user revokes it", async () => {
        const t = tag();
        const [ann, bob] = [`${t}-ann`, `${t}-bob`];
        await users(ann, bob);
        await store.addDevice(ann, device("d"), 20);
        assert.equal(await store.revokeDevice(bob, "d"), false);
        assert.ok(await store.getDevice(ann, "d"));
        assert.equal(await store.revokeDevice(ann, "d"), true);
        assert.equal(await store.revokeDevice(ann, "d"), false);
        assert.equal(await store.getDevice(ann, "d"), undefined);
        assert.equal(await store.useDevice(ann, "d", T0 + 1), false);
        assert.deepEqual(await store.listDevices(ann), []);
      });

      it("a device outlives logins, logouts and expired sessions", async () => {
        const u = `${tag()}-ann`;
        await users(u);
        await store.addDevice(u, device("d"), 20);
        await store.deleteSession(await login(u));
        await login(u);
        await store.expireSessions(T0 + 1);
        assert.equal((await store.getDevice(u, "d"))?.deviceId, "d");
      });
    });

    describe("groups", () => {
      it("refuses a taken group id; the creator owns it and is a member", async () => {
        const t = tag();
        const [ann, bob] = [`${t}-ann`, `${t}-bob`];
        await users(ann, bob);
        await store.createGroup(t, ann, T0);
        await rejectsWith(store.createGroup(t, bob, T0), "GROUP_EXISTS");
        await store.assertMember(t, ann);
        const g = await groupAs(ann, t);
        assert.deepEqual(g, { groupId: t, owner: ann, members: 1, role: "owner" });
      });

      it("lists the asker's groups first, then the others, by id with roles and member counts", async () => {
        const t = tag();
        const [own, mem, pen, out] = [`${t}-own`, `${t}-mem`, `${t}-pen`, `${t}-out`];
        await group(`${t}-b`, own, [mem]);
        await group(`${t}-a`, `${t}-solo`);
        await users(pen, out);
        await store.requestJoin(`${t}-b`, pen, T0);
        const mine = async (u: string) => (await store.listGroups(u, { prefix: `${t}-`, limit: 100 })).groups;
        const roles = async (u: string) => (await mine(u)).map((g) => g.role);
        assert.deepEqual(await mine(own), [
          { groupId: `${t}-b`, owner: own, members: 2, role: "owner" },
          { groupId: `${t}-a`, owner: `${t}-solo`, members: 1, role: "none" },
        ]);
        assert.deepEqual(await roles(mem), ["member", "none"]);
        assert.deepEqual(await roles(pen), ["pending", "none"]);
        assert.deepEqual(await roles(out), ["none", "none"]);
      });

      it("bounds the list by the limit, counts every match and finds any group by prefix", async () => {
        const t = tag();
        const [ann, bob] = [`${t}-ann`, `${t}-bob`];
        await users(ann, bob);
        // bytewise order: '-' < '.' < digits < 'A' < '_' < 'a'
        const ids = ["x-9", "x.1", "x0", "xA", "x_", "xa", "xb", "xc"].map((s) => `${t}${s}`);
        for (const g of ids) await store.createGroup(g, ann, T0);
        await store.requestJoin(`${t}xc`, bob, T0);
        const page = await store.listGroups(bob, { prefix: `${t}x`, limit: 3 });
        assert.equal(page.total, ids.length);
        assert.deepEqual(
          page.groups.map((g) => [g.groupId, g.role]),
          [
            [`${t}xc`, "pending"],
            [`${t}x-9`, "none"],
            [`${t}x.1`, "none"],
          ],
        );
        const all = await store.listGroups(bob, { prefix: `${t}x`, limit: 100 });
        assert.deepEqual(
          all.groups.map((g) => g.groupId),
          [`${t}xc`, ...ids.slice(0, -1)],
        );
        const one = await store.listGroups(bob, { prefix: `${t}xA`, limit: 100 });
        assert.deepEqual([one.total, one.groups.map((g) => g.groupId)], [1, [`${t}xA`]]);
        const none = await store.listGroups(bob, { prefix: `${t}q`, limit: 100 });
        assert.deepEqual([none.total, none.groups], [0, []]);
        assert.equal((await store.listGroups(ann, { prefix: `${t}x`, limit: 0 })).groups.length, 0);
      });

      it("join requests: unknown group, member, pending", async () => {
        const t = tag();
        const [own, mem, ann] = [`${t}-own`, `${t}-mem`, `${t}-ann`];
        await group(t, own, [mem]);
        await users(ann);
        await rejectsWith(store.requestJoin(`${t}-nope`, ann, T0), "GROUP_NOT_FOUND");
        await rejectsWith(store.requestJoin(t, own, T0), "ALREADY_MEMBER");
        await rejectsWith(store.requestJoin(t, mem, T0), "ALREADY_MEMBER");
        await store.requestJoin(t, ann, T0);
        await rejectsWith(store.requestJoin(t, ann, T0), "REQUEST_EXISTS");
        await rejectsWith(store.assertMember(t, ann), "NOT_MEMBER");
      });

      it("only the owner lists requests, oldest first", async () => {
        const t = tag();
        const [own, mem, zed, amy] = [`${t}-own`, `${t}-mem`, `${t}-zed`, `${t}-amy`];
        await group(t, own, [mem]);
        await users(zed, amy);
        // same millisecond: the order of asking decides, not the id
        await store.requestJoin(t, zed, T0 + 1);
        await store.requestJoin(t, amy, T0 + 1);
        assert.deepEqual(await store.listRequests(t, own), [
          { userId: zed, requestedAt: T0 + 1 },
          { userId: amy, requestedAt: T0 + 1 },
        ]);
        await rejectsWith(store.listRequests(t, mem), "NOT_OWNER");
        await rejectsWith(store.listRequests(t, zed), "NOT_OWNER");
        await rejectsWith(store.listRequests(`${t}-nope`, own), "GROUP_NOT_FOUND");
      });

      it("members list the members, the owner first, in the order they joined; others may not", async () => {
        const t = tag();
        const [own, mem, zed, amy] = [`${t}-own`, `${t}-mem`, `${t}-zed`, `${t}-amy`];
        await group(t, own, [mem]);
        await users(zed, amy);
        await store.requestJoin(t, amy, T0 + 5);
        await store.acceptRequest(t, own, amy, T0 + 9);
        const listed = await store.listMembers(t, mem);
        assert.deepEqual(
          listed.map((m) => m.userId),
          [own, mem, amy],
        );
        assert.equal(listed[2]!.joinedAt, T0 + 9);
        assert.deepEqual(
          listed.map((m) => m.role),
          ["owner", "member", "member"],
        );
        // the owner leaves: the next member by joining owns it, and is listed first
        await store.leaveGroup(t, own);
        assert.deepEqual(
          (await store.listMembers(t, amy)).map((m) => [m.userId, m.role]),
          [
            [mem, "owner"],
            [amy, "member"],
          ],
        );
        await store.requestJoin(t, zed, T0);
        await rejectsWith(store.listMembers(t, zed), "NOT_MEMBER");
        await rejectsWith(store.listMembers(`${t}-nope`, own), "GROUP_NOT_FOUND");
      });

      it("only the owner accepts; accepting twice or an unasked user is an error", async () => {
        const t = tag();
        const [own, mem, ann, bob] = [`${t}-own`, `${t}-mem`, `${t}-ann`, `${t}-bob`];
        await group(t, own, [mem]);
        await users(ann, bob);
        await store.requestJoin(t, ann, T0);
        await rejectsWith(store.acceptRequest(t, mem, ann, T0), "NOT_OWNER");
        await rejectsWith(store.acceptRequest(t, ann, ann, T0), "NOT_OWNER");
        await rejectsWith(store.acceptRequest(`${t}-nope`, own, ann, T0), "GROUP_NOT_FOUND");
        await store.acceptRequest(t, own, ann, T0);
        await store.assertMember(t, ann);
        assert.deepEqual(await store.listRequests(t, own), []);
        await rejectsWith(store.acceptRequest(t, own, ann, T0), "ALREADY_MEMBER", "REQUEST_NOT_FOUND");
        await rejectsWith(store.acceptRequest(t, own, bob, T0), "REQUEST_NOT_FOUND");
        await rejectsWith(store.acceptRequest(t, own, mem, T0), "ALREADY_MEMBER");
      });

      it("only the owner rejects a request; a rejected user may ask again", async () => {
        const t = tag();
        const [own, ann, bob] = [`${t}-own`, `${t}-ann`, `${t}-bob`];
        await group(t, own, [bob]);
        await users(ann);
        await store.requestJoin(t, ann, T0);
        await rejectsWith(store.rejectRequest(t, bob, ann), "NOT_OWNER");
        await rejectsWith(store.rejectRequest(`${t}-nope`, own, ann), "GROUP_NOT_FOUND");
        await store.rejectRequest(t, own, ann);
        assert.deepEqual(await store.listRequests(t, own), []);
        await rejectsWith(store.rejectRequest(t, own, ann), "REQUEST_NOT_FOUND");
        await rejectsWith(store.assertMember(t, ann), "NOT_MEMBER");
        await store.requestJoin(t, ann, T0 + 1);
        assert.deepEqual(
          (await store.listRequests(t, own)).map((r) => r.userId),
          [ann],
        );
      });

      it("only the owner removes a member, never themselves; the member's shares there end", async () => {
        const t = tag();
        const [own, ann, bob] = [`${t}-own`, `${t}-ann`, `${t}-bob`];
        await group(t, own, [ann, bob]);
        await store.createGroup(`${t}-b`, own, T0);
        await store.requestJoin(`${t}-b`, ann, T0);
        await store.acceptRequest(`${t}-b`, own, ann, T0);
        await login(own);
        await login(ann);
        const file = fileOf("a.txt", "a");
        await store.addFile(t, ann, file, true, T0);
        await store.addFile(`${t}-b`, ann, file, true, T0);
        await rejectsWith(store.removeMember(t, bob, ann), "NOT_OWNER");
        await rejectsWith(store.removeMember(t, own, own), "CANNOT_REMOVE_OWNER");
        await rejectsWith(store.removeMember(`${t}-nope`, own, ann), "GROUP_NOT_FOUND");
        await rejectsWith(store.removeMember(t, own, `${t}-zed`), "MEMBER_NOT_FOUND");
        await store.removeMember(t, own, ann);
        await rejectsWith(store.assertMember(t, ann), "NOT_MEMBER");
        await rejectsWith(store.getFile(t, "a.txt", ann), "NOT_MEMBER");
        await rejectsWith(store.removeMember(t, own, ann), "MEMBER_NOT_FOUND");
        assert.deepEqual(await store.listPeers(t, "a.txt", own, T0), []);
        // the same file in another group is still shared there
        assert.deepEqual(
          (await store.listPeers(`${t}-b`, "a.txt", own, T0)).map((p) => p.userId),
          [ann],
        );
        assert.equal((await groupAs(own, t))?.members, 2);
      });

      it("assertMember: unknown group, non-member", async () => {
        const t = tag();
        await group(t, `${t}-own`);
        await users(`${t}-out`);
        await rejectsWith(store.assertMember(`${t}-nope`, `${t}-own`), "GROUP_NOT_FOUND");
        await rejectsWith(store.assertMember(t, `${t}-out`), "NOT_MEMBER");
      });
    });

    describe("leaving", () => {
      it("an owner hands the group to the earliest joined member, the last member deletes it", async () => {
        const t = tag();
        const [zed, yan, xav, wes] = [`${t}-zed`, `${t}-yan`, `${t}-xav`, `${t}-wes`];
        await users(zed, yan, xav, wes);
        await store.createGroup(t, zed, T0);
        for (const u of [xav, wes, yan]) await store.requestJoin(t, u, T0);
        // joined yan, xav, wes: alphabetical order is the reverse, and yan and xav share a millisecond
        await store.acceptRequest(t, zed, yan, T0 + 10);
        await store.acceptRequest(t, zed, xav, T0 + 10);
        await store.acceptRequest(t, zed, wes, T0 + 11);
        assert.deepEqual(await store.leaveGroup(t, zed), { newOwner: yan, deleted: false });
        const g = await groupAs(zed, t);
        assert.deepEqual(g, { groupId: t, owner: yan, members: 3, role: "none" });
        await rejectsWith(store.listRequests(t, zed), "NOT_OWNER");
        assert.deepEqual(await store.leaveGroup(t, yan), { newOwner: xav, deleted: false });
        assert.deepEqual(await store.leaveGroup(t, xav), { newOwner: wes, deleted: false });
        assert.deepEqual(await store.leaveGroup(t, wes), { deleted: true });
        assert.equal(await groupAs(wes, t), undefined);
        await rejectsWith(store.assertMember(t, wes), "GROUP_NOT_FOUND");
        await rejectsWith(store.leaveGroup(t, wes), "GROUP_NOT_FOUND");
      });

      it("a member leaving keeps the owner", async () => {
        const t = tag();
        const [own, ann, bob] = [`${t}-own`, `${t}-ann`, `${t}-bob`];
        await group(t, own, [ann, bob]);
        const result = await store.leaveGroup(t, ann);
        assert.equal(result.deleted, false);
        assert.equal(result.newOwner, undefined);
        const g = await groupAs(ann, t);
        assert.deepEqual(g, { groupId: t, owner: own, members: 2, role: "none" });
        await rejectsWith(store.leaveGroup(t, ann), "NOT_MEMBER");
      });

      it("deleting a group deletes its files and requests", async () => {
        const t = tag();
        const [own, pen, other] = [`${t}-own`, `${t}-pen`, `${t}-new`];
        await group(t, own);
        await users(pen, other);
        await login(own);
        await store.addFile(t, own, fileOf("a.txt", "a"), true, T0);
        await store.requestJoin(t, pen, T0);
        assert.deepEqual(await store.leaveGroup(t, own), { deleted: true });
        await store.createGroup(t, other, T0);
        assert.deepEqual(await store.listFiles(t, other, T0), []);
        assert.deepEqual(await store.listRequests(t, other), []);
        assert.equal((await groupAs(pen, t))?.role, "none");
      });

      it("leaving stops the leaver's shares in that group only", async () => {
        const t = tag();
        const [own, ann] = [`${t}-own`, `${t}-ann`];
        await group(`${t}-a`, own, [ann]);
        await store.createGroup(`${t}-b`, own, T0);
        await store.requestJoin(`${t}-b`, ann, T0);
        await store.acceptRequest(`${t}-b`, own, ann, T0);
        await login(own);
        await login(ann);
        const file = fileOf("a.txt", "a");
        await store.addFile(`${t}-a`, ann, file, true, T0);
        await store.addFile(`${t}-b`, ann, file, true, T0);
        await store.leaveGroup(`${t}-a`, ann);
        assert.deepEqual(await store.listPeers(`${t}-a`, "a.txt", own, T0), []);
        assert.deepEqual(
          (await store.listPeers(`${t}-b`, "a.txt", own, T0)).map((p) => p.userId),
          [ann],
        );
        // the file stays listed, unavailable
        assert.deepEqual(await store.listFiles(`${t}-a`, own, T0), [
          {
            name: "a.txt",
            size: 1,
            sha1: file.sha1,
            fileId: file.fileId,
            sharersOnline: 0,
            seedersOnline: 0,
          },
        ]);
      });

      it("a pending requester leaving withdraws the request", async () => {
        const t = tag();
        const [own, pen, out] = [`${t}-own`, `${t}-pen`, `${t}-out`];
        await group(t, own);
        await users(pen, out);
        await store.requestJoin(t, pen, T0);
        assert.deepEqual(await store.leaveGroup(t, pen), { deleted: false, withdrawn: true });
        assert.deepEqual(await store.listRequests(t, own), []);
        assert.equal((await groupAs(pen, t))?.role, "none");
        await rejectsWith(store.leaveGroup(t, pen), "NOT_MEMBER");
        await rejectsWith(store.leaveGroup(t, out), "NOT_MEMBER");
        await rejectsWith(store.acceptRequest(t, own, pen, T0), "REQUEST_NOT_FOUND");
      });
    });

    describe("files and shares", () => {
      it("registers a file and returns its metadata, sizes beyond 32 bits included", async () => {
        const t = tag();
        const own = `${t}-own`;
        await group(t, own);
        const big = fileOf("big.bin", "big", 64 * 1024 ** 3);
        await store.addFile(t, own, big, true, T0);
        assert.deepEqual(await store.getFile(t, "big.bin", own), big);
        await rejectsWith(store.getFile(t, "nope", own), "FILE_NOT_FOUND");
      });

      it("a name is unique in its group; the same content adds a sharer", async () => {
        const t = tag();
        const [own, ann, bob] = [`${t}-own`, `${t}-ann`, `${t}-bob`];
        await group(t, own, [ann, bob]);
        for (const u of [own, ann, bob]) await login(u);
        await store.addFile(t, own, fileOf("a.txt", "one"), true, T0);
        await rejectsWith(store.addFile(t, ann, fileOf("a.txt", "two"), true, T0), "FILE_EXISTS");
        await rejectsWith(store.addFile(t, ann, fileOf("a.txt", "one", 99), true, T0), "FILE_EXISTS");
        await store.addFile(t, ann, fileOf("a.txt", "one"), true, T0);
        const peers = await store.listPeers(t, "a.txt", bob, T0);
        assert.deepEqual(
          peers.map((p) => p.userId),
          [ann, own],
        );
        assert.equal((await store.listFiles(t, bob, T0))[0]?.sharersOnline, 2);
      });

      it("only members register, list and read files", async () => {
        const t = tag();
        const [own, out, pen] = [`${t}-own`, `${t}-out`, `${t}-pen`];
        await group(t, own);
        await users(out, pen);
        await store.requestJoin(t, pen, T0);
        await store.addFile(t, own, fileOf("a.txt", "a"), true, T0);
        for (const u of [out, pen]) {
          await rejectsWith(store.addFile(t, u, fileOf("b.txt", "b"), true, T0), "NOT_MEMBER");
          await rejectsWith(store.listFiles(t, u, T0), "NOT_MEMBER");
          await rejectsWith(store.getFile(t, "a.txt", u), "NOT_MEMBER");
          await rejectsWith(store.listPeers(t, "a.txt", u, T0), "NOT_MEMBER");
          await rejectsWith(store.addShare(t, "a.txt", u, true, T0), "NOT_MEMBER");
        }
        await rejectsWith(store.addFile(`${t}-nope`, own, fileOf("b.txt", "b"), true, T0), "GROUP_NOT_FOUND");
        await rejectsWith(store.listFiles(`${t}-nope`, own, T0), "GROUP_NOT_FOUND");
      });

      it("listFiles counts only online sharers and lists files nobody shares", async () => {
        const t = tag();
        const [own, on, edge, off, gone] = [`${t}-own`, `${t}-on`, `${t}-edge`, `${t}-off`, `${t}-gone`];
        const now = T0 + 10 * PEER_TTL_MS;
        await group(t, own, [on, edge, off, gone]);
        await login(on, now - 1);
        await login(edge, now - PEER_TTL_MS);
        await login(off, now - PEER_TTL_MS - 1);
        const goneToken = await login(gone, now);
        const b = fileOf("b.txt", "b");
        const a = fileOf("a.txt", "a");
        await store.addFile(t, on, b, false, now);
        await store.addFile(t, edge, b, true, now);
        await store.addFile(t, off, b, true, now);
        await store.addFile(t, gone, b, true, now);
        await store.addFile(t, off, a, true, now);
        await store.deleteSession(goneToken);
        assert.deepEqual(await store.listFiles(t, own, now), [
          { name: "a.txt", size: 1, sha1: a.sha1, fileId: a.fileId, sharersOnline: 0, seedersOnline: 0 },
          { name: "b.txt", size: 1, sha1: b.sha1, fileId: b.fileId, sharersOnline: 2, seedersOnline: 1 },
        ]);
      });

      it("listPeers: online sharers but the asker, at their current address", async () => {
        const t = tag();
        const [own, ann, bob, off] = [`${t}-own`, `${t}-ann`, `${t}-bob`, `${t}-off`];
        await group(t, own, [ann, bob, off]);
        await login(own, T0, "10.0.0.5:5");
        await login(ann, T0, "10.0.0.1:1");
        await login(off, T0 - PEER_TTL_MS - 1);
        const file = fileOf("a.txt", "a");
        await store.addFile(t, own, file, true, T0);
        await store.addFile(t, ann, file, false, T0);
        await store.addShare(t, "a.txt", off, true, T0);
        assert.deepEqual(await store.listPeers(t, "a.txt", own, T0), [
          { userId: ann, peerAddr: "10.0.0.1:1", claimedAddr: "10.0.0.1:1", complete: false },
        ]);
        // ann moves: the new client announces again from its new address
        await login(ann, T0 + 1, "10.0.0.9:9");
        await store.addShare(t, "a.txt", ann, true, T0 + 1);
        await login(bob, T0 + 1);
        assert.deepEqual(
          (await store.listPeers(t, "a.txt", bob, T0 + 1)).map((p) => [p.userId, p.peerAddr]),
          [
            [ann, "10.0.0.9:9"],
            [own, "10.0.0.5:5"],
          ],
        );
        await rejectsWith(store.listPeers(t, "nope", own, T0), "FILE_NOT_FOUND");
      });

      it("addShare: partial, then complete", async () => {
        const t = tag();
        const [own, ann] = [`${t}-own`, `${t}-ann`];
        await group(t, own, [ann]);
        await login(own);
        await login(ann);
        await store.addFile(t, own, fileOf("a.txt", "a"), true, T0);
        await store.addShare(t, "a.txt", ann, false, T0);
        const annAt = async () => (await store.listPeers(t, "a.txt", own, T0)).find((p) => p.userId === ann);
        assert.equal((await annAt())?.complete, false);
        assert.deepEqual(
          (await store.listFiles(t, own, T0)).map((f) => [f.sharersOnline, f.seedersOnline]),
          [[2, 1]],
        );
        await store.addShare(t, "a.txt", ann, true, T0);
        assert.equal((await annAt())?.complete, true);
        assert.deepEqual(
          (await store.listFiles(t, own, T0)).map((f) => [f.sharersOnline, f.seedersOnline]),
          [[2, 2]],
        );
        await rejectsWith(store.addShare(t, "nope", ann, true, T0), "FILE_NOT_FOUND");
        await rejectsWith(store.addShare(`${t}-nope`, "a.txt", ann, true, T0), "GROUP_NOT_FOUND");
      });

      it("a file's id is derived from its size and pieces, not its whole-file SHA1", async () => {
        const t = tag();
        const own = `${t}-own`;
        await group(t, own);
        await store.createGroup(`${t}-b`, own, T0);
        const real = fileOf("a.txt", "a");
        const forged = { ...real, pieces: Buffer.alloc(real.pieces.length, 7) };
        await store.addFile(t, own, real, true, T0);
        await store.addFile(`${t}-b`, own, forged, true, T0);
        const [a] = await store.listFiles(t, own, T0);
        const [b] = await store.listFiles(`${t}-b`, own, T0);
        assert.equal(a!.sha1, b!.sha1);
        assert.equal(a!.fileId, fileIdOf(real.size, real.pieces));
        assert.equal(b!.fileId, fileIdOf(forged.size, forged.pieces));
        assert.notEqual(a!.fileId, b!.fileId);
        assert.equal((await store.getFile(`${t}-b`, "a.txt", own)).fileId, b!.fileId);
        // the same name and SHA1 with other pieces is other content
        await rejectsWith(store.addFile(t, own, { ...forged }, true, T0), "FILE_EXISTS");
      });

      it("removeShare: NOT_SHARING unless sharing", async () => {
        const t = tag();
        const [own, ann] = [`${t}-own`, `${t}-ann`];
        await group(t, own, [ann]);
        await login(own);
        await store.addFile(t, own, fileOf("a.txt", "a"), true, T0);
        await rejectsWith(store.removeShare(t, "a.txt", ann), "NOT_SHARING");
        await store.removeShare(t, "a.txt", own);
        await rejectsWith(store.removeShare(t, "a.txt", own), "NOT_SHARING");
        assert.equal((await store.listFiles(t, own, T0))[0]?.sharersOnline, 0);
      });
    });

    describe("signals", () => {
      it("a user reads its own signals in order, once; they expire", async () => {
        const t = tag();
        const [ann, bob] = [`${t}-ann`, `${t}-bob`];
        await users(ann, bob);
        await store.postSignal(ann, "one", T0, T0 + 1000);
        await store.postSignal(bob, "for bob", T0, T0 + 1000);
        await store.postSignal(ann, "two", T0, T0 + 10);
        const got = await store.takeSignals(ann, 0, T0, 10);
        assert.deepEqual(
          got.map((g) => g.payload),
          ["one", "two"],
        );
        assert.ok(got[0]!.seq < got[1]!.seq);
        // read up to the first: only the second is left; past its expiry, nothing
        assert.deepEqual(
          (await store.takeSignals(ann, got[0]!.seq, T0, 10)).map((g) => g.payload),
          ["two"],
        );
        assert.deepEqual(await store.takeSignals(ann, got[0]!.seq, T0 + 11, 10), []);
        assert.deepEqual(
          (await store.takeSignals(bob, 0, T0, 10)).map((g) => g.payload),
          ["for bob"],
        );
      });

      it("bounds the signals waiting for one user, and a new session clears them", async () => {
        const t = tag();
        const ann = `${t}-ann`;
        await users(ann);
        for (let i = 0; i < MAX_PENDING_SIGNALS; i++) await store.postSignal(ann, `s${i}`, T0, T0 + 1000);
        await rejectsWith(store.postSignal(ann, "one more", T0, T0 + 1000), "BUSY");
        assert.equal((await store.takeSignals(ann, 0, T0, 5)).length, 5);
        // expired ones make room
        await store.postSignal(ann, "later", T0 + 2000, T0 + 3000);
        await login(ann, T0 + 2000);
        assert.deepEqual(await store.takeSignals(ann, 0, T0 + 2000, 10), []);
      });

      it("tells whom to wake: the users with signals after a seq, from another store too", async () => {
        const t = tag();
        const [ann, bob] = [`${t}-ann`, `${t}-bob`];
        await users(ann, bob);
        const { last } = await store.signalsAfter(0, 1000);
        await withSecondStore(async (other) => {
          await other.postSignal(ann, "x", T0, T0 + 1000);
          await other.postSignal(bob, "y", T0, T0 + 1000);
        });
        const woken = await store.signalsAfter(last, 1000);
        assert.deepEqual([...woken.users].sort(), [ann, bob]);
        assert.ok(woken.last > last);
        assert.deepEqual((await store.signalsAfter(woken.last, 1000)).users, []);
      });
    });

    describe("two store instances racing on one database", () => {
      /** 10 calls, alternating between the suite's store and a second instance. */
      async function race(fn: (s: Store, i: number) => Promise<unknown>) {
        return withSecondStore((other) =>
          Promise.allSettled(Array.from({ length: 10 }, (_, i) => fn(i % 2 ? other : store, i))),
        );
      }

      it("createUser: one success", async () => {
        const u = `${tag()}-ann`;
        assertOneWinner(
          await race((s, i) => s.createUser({ userId: u, passwordHash: `h${i}` }, T0)),
          "USER_EXISTS",
        );
      });

      it("createGroup: one success", async () => {
        const t = tag();
        await users(`${t}-ann`);
        assertOneWinner(await race((s) => s.createGroup(t, `${t}-ann`, T0)), "GROUP_EXISTS");
        assert.equal((await groupAs(`${t}-ann`, t))?.members, 1);
      });

      it("requestJoin and acceptRequest: one success each", async () => {
        const t = tag();
        const [own, ann] = [`${t}-own`, `${t}-ann`];
        await group(t, own);
        await users(ann);
        assertOneWinner(await race((s) => s.requestJoin(t, ann, T0)), "REQUEST_EXISTS");
        assertOneWinner(
          await race((s) => s.acceptRequest(t, own, ann, T0)),
          "ALREADY_MEMBER",
          "REQUEST_NOT_FOUND",
        );
        assert.equal((await groupAs(own, t))?.members, 2);
      });

      it("addDevice: racing adds never pass the bound", async () => {
        const u = `${tag()}-ann`;
        await users(u);
        const results = await race((s, i) =>
          s.addDevice(u, { deviceId: `d${i}`, secretHash: "h", name: "n", createdAt: T0 }, 3),
        );
        assert.equal(results.filter((r) => r.status === "fulfilled").length, 3);
        for (const r of results) {
          if (r.status === "rejected") assert.equal((r.reason as GsError).code, "QUOTA_EXCEEDED");
        }
        assert.equal((await store.listDevices(u)).length, 3);
      });

      it("createSession: one session survives", async () => {
        const u = `${tag()}-ann`;
        await users(u);
        const results = await race((s, i) => s.createSession(`${u}-tok-${i}`, u, `10.0.0.${i}:1`, T0));
        assert.ok(results.every((r) => r.status === "fulfilled"));
        const alive = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.getSession(`${u}-tok-${i}`)),
        );
        assert.equal(alive.filter(Boolean).length, 1);
      });

      it("signingKey: the first stored wins, racing or not", async () => {
        const key = (i: number) => ({ publicKey: `pub-${i}`, privateKey: `priv-${i}` });
        const keys = await withSecondStore((other) =>
          Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).signingKey(key(i)))),
        );
        for (const k of keys) assert.deepEqual(k, keys[0]);
        assert.match(keys[0]!.publicKey, /^pub-\d$/);
        assert.deepEqual(await store.signingKey(key(99)), keys[0]);
      });

      it("tlsIdentity: the first stored wins, racing or not, apart from the signing key", async () => {
        const id = (i: number) => ({ certificate: `cert-${i}`, privateKey: `tls-${i}` });
        const ids = await withSecondStore((other) =>
          Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).tlsIdentity(id(i)))),
        );
        for (const k of ids) assert.deepEqual(k, ids[0]);
        assert.match(ids[0]!.certificate, /^cert-\d$/);
        assert.deepEqual(await store.tlsIdentity(id(99)), ids[0]);
        assert.doesNotMatch(
          (await store.signingKey({ publicKey: "p", privateKey: "q" })).privateKey,
          /^tls-/,
        );
      });
    });

    describe("login throttle, trusted addresses, password upgrades, usage", () => {
      const rule = (key: string, free = 3): ThrottleRule => ({
        key,
        free,
        baseBlockMs: 1_000,
        maxBlockMs: 8_000,
      });

      it("counts each attempt before it is evaluated and blocks from the free count, doubling to the cap", async () => {
        const k = `${tag()}-k`;
        assert.equal(await store.throttleEntry(k), undefined);
        for (let i = 1; i <= 2; i++) {
          assert.equal(await store.admitAttempt([rule(k)], T0), 0);
          assert.deepEqual(await store.throttleEntry(k), { failures: i, blockedUntil: 0 });
        }
        assert.equal(await store.admitAttempt([rule(k)], T0), 0); // the third is let in, and blocks the next
        assert.deepEqual(await store.throttleEntry(k), { failures: 3, blockedUntil: T0 + 1_000 });
        assert.equal(await store.admitAttempt([rule(k)], T0 + 400), 600);
        assert.equal((await store.throttleEntry(k))?.failures, 3, "a refused attempt is not counted");
        let now = T0 + 1_000;
        for (const block of [2_000, 4_000, 8_000, 8_000, 8_000]) {
          assert.equal(await store.admitAttempt([rule(k)], now), 0);
          assert.equal((await store.throttleEntry(k))?.blockedUntil, now + block);
          now += block;
        }
      });

      it("refuses when any key is blocked and then counts none of them", async () => {
        const [a, b] = [`${tag()}-a`, `${tag()}-b`];
        await store.admitAttempt([rule(a, 1)], T0);
        assert.ok((await store.admitAttempt([rule(b), rule(a, 1)], T0)) > 0);
        assert.equal(await store.throttleEntry(b), undefined);
      });

      it("a success resets some keys and gives the attempt back to others", async () => {
        const [u, a] = [`${tag()}-u`, `${tag()}-a`];
        for (let i = 0; i < 3; i++) await store.admitAttempt([rule(u), rule(a)], T0);
        await store.attemptSucceeded([u], [rule(a)], T0);
        assert.equal(await store.throttleEntry(u), undefined);
        // three counted, one given back: below the free count, so the block goes too
        assert.deepEqual(await store.throttleEntry(a), { failures: 2, blockedUntil: 0 });
      });

      it("never forgets an entry before its block has ended and THROTTLE_RETENTION_MS passed", async () => {
        const k = `${tag()}-old`;
        const big: ThrottleRule = {
          key: k,
          free: 1,
          baseBlockMs: 10 * THROTTLE_RETENTION_MS,
          maxBlockMs: 10 * THROTTLE_RETENTION_MS,
        };
        await store.admitAttempt([big], T0);
        const blocked = await store.throttleEntry(k);
        // many admitted attempts for other keys long after: each sweeps stale entries
        const later = T0 + 2 * THROTTLE_RETENTION_MS;
        for (let i = 0; i < 30; i++) await store.admitAttempt([rule(`${tag()}-x${i}`)], later);
        assert.deepEqual(await store.throttleEntry(k), blocked);
        const stale = `${tag()}-stale`;
        await store.admitAttempt([rule(stale)], T0);
        const muchLater = T0 + 10 * THROTTLE_RETENTION_MS + THROTTLE_RETENTION_MS + 1;
        for (let i = 0; i < 100; i++) await store.admitAttempt([rule(`${tag()}-y${i}`)], muchLater);
        assert.equal(await store.throttleEntry(stale), undefined, "an hour-old unblocked entry goes");
        assert.equal(await store.throttleEntry(k), undefined, "and a block an hour after it ended");
      });

      it("two store instances admitting at once count every attempt exactly once", async () => {
        const k = `${tag()}-race`;
        const results = await withSecondStore((other) =>
          Promise.all(
            Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).admitAttempt([rule(k, 4)], T0)),
          ),
        );
        assert.equal(results.filter((w) => w === 0).length, 4);
        assert.equal((await store.throttleEntry(k))?.failures, 4);
      });

      it("trusts the addresses a user logged in from, the most recent `keep` of them, since a time", async () => {
        const u = `${tag()}-u`;
        await users(u);
        assert.equal(await store.isTrustedAddress(u, "10.0.0.1", 0), false);
        for (let i = 1; i <= 4; i++) await store.trustAddress(u, `10.0.0.${i}`, T0 + i, 3);
        assert.equal(await store.isTrustedAddress(u, "10.0.0.1", 0), false, "the oldest beyond keep goes");
        assert.equal(await store.isTrustedAddress(u, "10.0.0.4", T0 + 4), true);
        assert.equal(await store.isTrustedAddress(u, "10.0.0.2", T0 + 3), false, "older than since");
        await store.trustAddress(u, "10.0.0.2", T0 + 10, 3);
        assert.equal(await store.isTrustedAddress(u, "10.0.0.2", T0 + 3), true);
        assert.equal(await store.isTrustedAddress(`${u}x`, "10.0.0.2", 0), false);
      });

      it("replaces a password hash; USER_NOT_FOUND for nobody", async () => {
        const u = `${tag()}-u`;
        await users(u);
        await store.setPasswordHash(u, "new-hash");
        assert.equal((await store.getUser(u))?.passwordHash, "new-hash");
        await rejectsWith(store.setPasswordHash(`${u}-nobody`, "h"), "USER_NOT_FOUND");
      });

      it("usage: groups owned, files registered and their piece-list bytes", async () => {
        const t = tag();
        const [own, ann] = [`${t}-own`, `${t}-ann`];
        assert.deepEqual(await store.usage(own), { groups: 0, files: 0, pieceBytes: 0 });
        await group(t, own, [ann]);
        await store.createGroup(`${t}b`, own, T0);
        await store.addFile(t, own, fileOf("a", "a"), true, T0);
        await store.addFile(t, own, fileOf("b", "bb"), true, T0);
        await store.addFile(t, ann, fileOf("a", "a"), true, T0); // a sharer, not a registration
        await store.addFile(t, ann, fileOf("c", "c"), true, T0);
        assert.deepEqual(await store.usage(own), { groups: 2, files: 2, pieceBytes: 80 });
        assert.deepEqual(await store.usage(ann), { groups: 0, files: 1, pieceBytes: 40 });
        await store.leaveGroup(`${t}b`, own); // its last member: the group is gone
        assert.equal((await store.usage(own)).groups, 1);
      });
    });

    it("data survives closing and re-opening", async () => {
      const t = tag();
      const [own, ann] = [`${t}-own`, `${t}-ann`];
      const file = fileOf("a.txt", "a");
      await withSecondStore(async (s) => {
        for (const u of [own, ann]) await s.createUser({ userId: u, passwordHash: "h" }, T0);
        await s.createGroup(t, own, T0);
        await s.requestJoin(t, ann, T0);
        await s.createSession(`${t}-tok`, own, "10.0.0.1:1", T0);
        await s.addFile(t, own, file, true, T0);
      });
      await withSecondStore(async (s) => {
        assert.equal((await s.getUser(ann))?.passwordHash, "h");
        assert.equal((await s.getSession(`${t}-tok`))?.userId, own);
        assert.deepEqual(await s.listRequests(t, own), [{ userId: ann, requestedAt: T0 }]);
        assert.deepEqual(await s.getFile(t, "a.txt", own), file);
        assert.equal((await s.listFiles(t, own, T0))[0]?.sharersOnline, 1);
      });
    });
  });
}

/**
 * Trackers starting at once on a fresh database: one applies the migrations, the
 * others wait for it and find nothing to do. `openDb` opens a new connection to
 * the same empty database each call.
 */
export function migrationRaceSuite(
  name: string,
  openDb: () => Promise<SqlDb>,
  cleanup: () => Promise<void>,
): void {
  describe(`Migrations: ${name}`, () => {
    after(cleanup);

    it("trackers starting at once migrate a fresh database exactly once", async () => {
      const dbs = await Promise.all(Array.from({ length: 5 }, () => openDb()));
      try {
        const applied = await Promise.all(dbs.map((db) => migrate(db)));
        const latest = MIGRATIONS.map((m) => m.version);
        assert.deepEqual(
          applied.filter((a) => a.length > 0),
          [latest],
        );
        assert.deepEqual(await migrate(dbs[0]!), []);
        const rows = await dbs[0]!.all<{ version: number }>(
          "SELECT version FROM schema_migrations ORDER BY version",
        );
        assert.deepEqual(
          rows.map((r) => r.version),
          latest,
        );
      } finally {
        await Promise.all(dbs.map((db) => db.close()));
      }
    });

    it("refuses a database newer than the code", async () => {
      const db = await openDb();
      try {
        await db.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [999, 0]);
        await assert.rejects(migrate(db), /newer/);
        await db.run("DELETE FROM schema_migrations WHERE version = ?", [999]);
      } finally {
        await db.close();
      }
    });
  });
}
