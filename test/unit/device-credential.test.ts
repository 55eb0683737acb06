import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  REMEMBERED_LOGIN_FILE,
  type Remembered,
  type RememberedLogin,
  RememberedLoginFile,
  trackerNames,
} from "../../src/client/deviceCredential.js";
import { STATE_DIR_MODE, STATE_FILE_MODE } from "../../src/client/state.js";
import type { TrackerAddress } from "../../src/shared/trackerInfo.js";
import { TrackerService } from "../../src/tracker/service.js";
import { openStore } from "../../src/tracker/store/index.js";
import { serveTracker, TEST_PEER, trackerCall } from "../helpers/tls.js";

// The client's remembered login on disk: owner-only, atomic, refused when others could
// have read it, and never sent to trackers it was not made at.

const TRACKERS: TrackerAddress[] = [
  { no: 1, host: "127.0.0.1", port: 7001 },
  { no: 2, host: "::1", port: 7002 },
];
const LOGIN: RememberedLogin = {
  userId: "alice",
  deviceId: "0123456789abcdef0123456789abcdef",
  secret: "A".repeat(43),
  trackers: trackerNames(TRACKERS),
};

const ready = (r: Remembered): RememberedLogin => {
  assert.equal(r.state, "ready", JSON.stringify(r));
  return (r as { login: RememberedLogin }).login;
};
const refused = (r: Remembered, why: RegExp): void => {
  assert.equal(r.state, "refused", JSON.stringify(r));
  assert.match((r as { problem: string }).problem, why);
};

describe("remembered login file", () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "gs-device-"));
  });
  after(() => rm(root, { recursive: true, force: true }));
  /** A state folder that does not exist yet. */
  const stateDir = () => join(root, `state-${++n}`, "nested");

  it("saves owner-only in a folder it makes owner-only, and loads it back", async () => {
    const dir = stateDir();
    const file = new RememberedLoginFile(dir);
    assert.deepEqual(await file.load(TRACKERS), { state: "none" });
    const umask = process.umask(0); // the modes hold whatever the umask
    try {
      await file.save(LOGIN);
    } finally {
      process.umask(umask);
    }
    assert.equal(file.path, join(dir, REMEMBERED_LOGIN_FILE));
    assert.equal((await stat(dir)).mode & 0o777, STATE_DIR_MODE);
    assert.equal((await stat(file.path)).mode & 0o777, STATE_FILE_MODE);
    assert.deepEqual(ready(await new RememberedLoginFile(dir).load(TRACKERS)), LOGIN);
    // what is in it: the credential and where it works, nothing else (no password field can creep in)
    assert.deepEqual(Object.keys(JSON.parse(await readFile(file.path, "utf8"))).sort(), [
      "deviceId",
      "secret",
      "trackers",
      "userId",
      "version",
    ]);
    await file.forget();
    assert.deepEqual(await file.load(TRACKERS), { state: "none" });
    await file.forget(); // twice is fine
  });

  it("refuses a file others can read or write, and says to revoke the device", async () => {
    const file = new RememberedLoginFile(stateDir());
    await file.save(LOGIN);
    for (const mode of [0o644, 0o604, 0o620, 0o640, 0o602]) {
      await chmod(file.path, mode);
      refused(await file.load(TRACKERS), /read or written by others.*revoke/);
    }
    await chmod(file.path, 0o600);
    ready(await file.load(TRACKERS));
  });

  it("refuses a file of another user", async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip("needs root to give a file away");
      return;
    }
    const file = new RememberedLoginFile(stateDir());
    await file.save(LOGIN);
    await chown(file.path, 65534, 65534);
    refused(await file.load(TRACKERS), /belongs to another user/);
  });

  it("refuses a symbolic link, a folder and a FIFO in its place, without following or blocking", async () => {
    const dir = stateDir();
    const file = new RememberedLoginFile(dir);
    await file.save(LOGIN);
    const real = join(dir, "elsewhere.json");
    await writeFile(real, await readFile(file.path), { mode: 0o600 });
    await rm(file.path);
    await symlink(real, file.path);
    refused(await file.load(TRACKERS), /symbolic link/);
    await rm(file.path);
    await mkdir(file.path, { mode: 0o700 });
    refused(await file.load(TRACKERS), /not a regular file/);
    await rm(file.path, { recursive: true });
    execFileSync("mkfifo", ["-m", "600", file.path]);
    refused(await file.load(TRACKERS), /not a regular file/);
  });

  it("refuses a damaged, empty, hand-edited or oversized file with a clear problem, never a crash", async () => {
    const file = new RememberedLoginFile(stateDir());
    await file.save(LOGIN);
    const text = await readFile(file.path, "utf8");
    const damaged = [
      "",
      text.slice(0, 40),
      "null",
      "[]",
      JSON.stringify({ ...JSON.parse(text), version: 2 }),
      JSON.stringify({ ...JSON.parse(text), secret: "short" }),
      JSON.stringify({ ...JSON.parse(text), userId: "evil\u001b[2J" }),
      JSON.stringify({ ...JSON.parse(text), password: "hunter2" }),
      JSON.stringify({ ...JSON.parse(text), trackers: "127.0.0.1:7001" }),
    ];
    for (const content of damaged) {
      await writeFile(file.path, content, { mode: 0o600 });
      refused(await file.load(TRACKERS), /is damaged.*log in with the password/);
    }
    await writeFile(file.path, " ".repeat(64 * 1024), { mode: 0o600 });
    refused(await file.load(TRACKERS), /over 16384 bytes/);
  });

  it("is used only with the trackers it was made at", async () => {
    const file = new RememberedLoginFile(stateDir());
    await file.save(LOGIN);
    // one of them dropped from tracker_info.txt: still among those it was made at
    ready(await file.load([TRACKERS[1]!]));
    // a tracker it was not made at: the secret is not offered to it
    refused(
      await file.load([...TRACKERS, { no: 3, host: "127.0.0.9", port: 7003 }]),
      /made at 127\.0\.0\.1:7001, \[::1\]:7002, not at 127\.0\.0\.9:7003/,
    );
    refused(await file.load([{ no: 1, host: "127.0.0.1", port: 7009 }]), /not at 127\.0\.0\.1:7009/);
  });

  it("replaces the file atomically, never writing through what was left at its temporary name", async () => {
    const dir = stateDir();
    const file = new RememberedLoginFile(dir);
    await file.save(LOGIN);
    const victim = join(dir, "victim");
    await writeFile(victim, "untouched", { mode: 0o644 });
    const tmp = `${file.path}.${process.pid}.tmp`;
    await symlink(victim, tmp);
    const next = { ...LOGIN, deviceId: "f".repeat(32) };
    await file.save(next);
    assert.equal(await readFile(victim, "utf8"), "untouched");
    assert.equal((await stat(victim)).mode & 0o777, 0o644);
    assert.ok((await lstat(file.path)).isFile());
    assert.deepEqual(ready(await file.load(TRACKERS)), next);
    await assert.rejects(lstat(tmp), { code: "ENOENT" });
  });

  it("refuses to save what is not a remembered login", async () => {
    const file = new RememberedLoginFile(stateDir());
    await assert.rejects(file.save({ ...LOGIN, secret: "" }), /not a remembered login/);
    assert.deepEqual(await file.load(TRACKERS), { state: "none" });
  });
});

describe("remembered login with a tracker", () => {
  it("logs in again after a restart with what was saved, without the password, until the logout forgets it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gs-device-tracker-"));
    const store = await openStore(join(dir, "tracker.db"));
    const service = new TrackerService(store);
    await service.init();
    const { app, port } = await serveTracker(service);
    try {
      const call = (method: string, path: string, body?: unknown, token?: string) =>
        trackerCall(port, { method, path, body, token, timeoutMs: 15_000 });
      const trackers: TrackerAddress[] = [{ no: 1, host: "127.0.0.1", port }];
      assert.equal((await call("POST", "/v1/users", { userId: "alice", password: "pw" })).status, 201);
      const first = await call("POST", "/v1/sessions", {
        userId: "alice",
        password: "pw",
        peerAddr: "127.0.0.1:6001",
        remember: { name: "headless box" },
      });
      const file = new RememberedLoginFile(join(dir, "state"));
      await file.save({ userId: "alice", ...first.body.device, trackers: trackerNames(trackers) });
      assert.ok(!(await readFile(file.path, "utf8")).includes('"pw"'));

      // the restart: only the state folder is left
      const login = ready(await new RememberedLoginFile(join(dir, "state")).load(trackers));
      const again = await call("POST", "/v1/sessions/device", {
        userId: login.userId,
        deviceId: login.deviceId,
        secret: login.secret,
        peerAddr: "127.0.0.1:6001",
        peerKey: TEST_PEER.publicKey,
      });
      assert.equal(again.status, 200, again.text);
      // logout that forgets the device: at the tracker, then on disk
      const out = await call("DELETE", `/v1/sessions?device=${login.deviceId}`, undefined, again.body.token);
      assert.equal(out.status, 200, out.text);
      await file.forget();
      const stale = await call("POST", "/v1/sessions/device", {
        userId: login.userId,
        deviceId: login.deviceId,
        secret: login.secret,
        peerAddr: "127.0.0.1:6001",
        peerKey: TEST_PEER.publicKey,
      });
      assert.equal(stale.code, "DEVICE_REFUSED", stale.text);
      assert.deepEqual(await file.load(trackers), { state: "none" });
    } finally {
      await app.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
