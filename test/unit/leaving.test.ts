import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, mock } from "node:test";
import { loginLines } from "../../src/client/cli/lines.js";
import { GroupshareClient } from "../../src/client/client.js";
import type { DownloadState, UserState } from "../../src/client/state.js";
import { HEARTBEAT_INTERVAL_MS } from "../../src/shared/constants.js";
import { GsError } from "../../src/shared/errors.js";

// The race that lost downloads at quit: a heartbeat in flight when the client
// closes hears 401 (the session is ending) and runs a second logout beside the
// first. With the tracker stood in for by a function and the heartbeat's timer
// driven by hand, the race happens every time: the state must still list the
// download afterwards.

describe("leaving while a heartbeat hears the session end", () => {
  it("keeps the unfinished download in the state file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gs-leaving-"));
    mock.timers.enable({ apis: ["setInterval"] });
    try {
      const saved: DownloadState = {
        groupId: "g",
        name: "f.bin",
        sha1: "",
        size: 0,
        target: join(dir, "f.bin"),
        partPath: join(dir, "f.bin.gspart"),
        have: "",
        mtimeMs: 0,
      };
      await mkdir(join(dir, "users"), { recursive: true });
      const stateFile = join(dir, "users", "bob.json");
      await writeFile(stateFile, JSON.stringify({ version: 1, shares: [], downloads: [saved] }));
      const client = new GroupshareClient({
        trackers: [{ no: 1, host: "127.0.0.1", port: 9 }] as never,
        host: "127.0.0.1",
        port: 0,
        stateDir: dir,
      });
      const publicKey = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" });
      let releaseBeat: (() => void) | undefined;
      const beat = new Promise<void>((r) => {
        releaseBeat = r;
      });
      // the tracker: a login, its key, a heartbeat that answers 401 once released, no file info yet
      client.tracker.call = (async (route: string) => {
        if (route === "login") return { token: "t" };
        if (route === "keys") return { publicKey };
        if (route === "heartbeat") {
          await beat;
          throw new GsError("UNAUTHORIZED", "session ended");
        }
        if (route === "download") throw new GsError("TRACKER_UNAVAILABLE", "no tracker answered");
        return {};
      }) as typeof client.tracker.call;

      const login = await client.engine.call("login", ["bob", "pw"]);
      assert.match(loginLines(login).join("\n"), /resuming download of \[g\] f\.bin/);
      mock.timers.tick(HEARTBEAT_INTERVAL_MS); // a heartbeat goes out, and waits for its answer
      const closing = client.close();
      releaseBeat!(); // ...which is 401: the session is ending
      await closing;
      // whatever the heartbeat does, it does within a few turns of the event loop
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      const state = JSON.parse(await readFile(stateFile, "utf8")) as UserState;
      assert.deepEqual(
        state.downloads.map((d) => d.name),
        ["f.bin"],
        "the download must resume at the next login",
      );
    } finally {
      mock.timers.reset();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
