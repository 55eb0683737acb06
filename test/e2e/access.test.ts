/**
 * Who gets a file: only members, through the tracker; and a sharer's
 * peer port gives no piece to a raw connection without a valid ticket for the
 * file's group (garbage, a forged ticket, no ticket, another group's ticket).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TICKET_TTL_MS } from "../../src/shared/constants.js";
import { fileIdOf } from "../../src/shared/fileId.js";
import { signTicket } from "../../src/shared/tickets.js";
import {
  decodeMessage,
  encodeHandshake,
  encodeRequest,
  FrameDecoder,
  type Message,
  RejectCode,
  rejectCodeName,
} from "../../src/wire/index.js";
import { Cluster, WAIT_MS } from "../helpers/procs.js";
import {
  assertSameFile,
  type Client,
  download,
  fails,
  groupOf,
  type MadeFile,
  ok,
  randomFile,
} from "./sharing.helpers.js";
import { peerSocket, TEST_PEER, trackerCall } from "../helpers/tls.js";

interface Probe {
  /** every message the sharer sent, decoded */
  messages: Message[];
  /** the sharer's bytes did not decode (not expected from a sharer) */
  undecodable?: string;
}

/**
 * Connects straight to a peer port, sends `bytes`, and collects what comes back
 * until the sharer closes the connection (bounded: a sharer that neither answers
 * nor closes fails the probe).
 */
function probe(port: number, bytes: Buffer[]): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = peerSocket(port);
    const decoder = new FrameDecoder();
    const got: Probe = { messages: [] };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the sharer on port ${port} neither refused nor closed within ${WAIT_MS} ms`));
    }, WAIT_MS);
    socket.on("secureConnect", () => {
      for (const b of bytes) socket.write(b);
    });
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) got.messages.push(decodeMessage(frame));
      } catch (err) {
        got.undecodable ??= (err as Error).message;
      }
    });
    socket.on("error", () => {}); // a reset is one way of being turned away
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

/** No piece, no bitfield, no handshake answer: at most a reject. */
function assertTurnedAway(what: string, p: Probe, code?: RejectCode): void {
  assert.equal(p.undecodable, undefined, `${what}: the sharer sent bytes that do not decode`);
  const types = p.messages.map((m) => m.type).filter((t) => t !== "keep-alive");
  assert.ok(
    types.every((t) => t === "reject"),
    `${what}: got ${types.join(", ")} instead of a reject`,
  );
  if (code !== undefined) {
    const reject = p.messages.find((m) => m.type === "reject");
    assert.ok(reject && reject.type === "reject", `${what}: closed without a reject`);
    assert.equal(rejectCodeName(reject.code), rejectCodeName(code), `${what}: ${reject.reason}`);
  }
}

/** The tracker's API, as a client other than ours would use it. */
async function api<T>(port: number, method: string, path: string, body: unknown, token?: string): Promise<T> {
  const res = await trackerCall(port, { method, path, body, token, timeoutMs: WAIT_MS });
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return res.body as T;
}

describe("access: members only, and a peer port that checks tickets", () => {
  let c: Cluster;
  let alice: Client;
  let bob: Client;
  let mallory: Client;
  let file: MadeFile;
  const dir = (n: string) => join(c.dir, n);

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    [alice, bob] = (await groupOf(c, "g1", ["alice", "bob"])) as [Client, Client];
    [mallory] = (await groupOf(c, "other", ["mallory"])) as [Client];
    for (const n of ["alice", "bob", "mallory"]) await mkdir(dir(n));
    file = await randomFile(join(dir("alice"), "a.bin"), 3 * 1024 * 1024 + 3);
    await ok(alice, `upload_file ${file.path} g1`, /^uploaded a\.bin to g1: /);
  });
  after(() => c.close());

  it("a non-member can neither list the group's files nor download them", async () => {
    await fails(mallory, "list_files g1", /^a\.bin {2}/);
    await fails(mallory, `download_file g1 a.bin ${dir("mallory")}`, /^downloading /);
    // asking to join is not being a member
    await ok(mallory, "join_group g1", /^asked to join g1/);
    await fails(mallory, "list_files g1", /^a\.bin {2}/);
    await fails(mallory, `download_file g1 a.bin ${dir("mallory")}`, /^downloading /);
    await ok(mallory, "show_downloads", /^\(no downloads\)$/);
  });

  it("a raw connection to a sharer's port gets no piece without a valid ticket for the file's group", async () => {
    const fileId = Buffer.from(fileIdOf(file.size, file.pieces), "hex");
    const greedy = encodeRequest(0, 0, 16 * 1024); // asks at once, as if the handshake had passed

    // a ticket with the right claims, signed by a key that is not the trackers'
    const { privateKey } = generateKeyPairSync("ed25519");
    const forged = signTicket(privateKey, {
      u: "mallory",
      g: "g1",
      f: fileId.toString("hex"),
      k: TEST_PEER.publicKey,
      exp: Date.now() + TICKET_TTL_MS,
    });

    // a genuine ticket from the tracker for the same content in another group: eve,
    // speaking the tracker's API, registers a.bin's hashes in her own group and asks there
    const port = c.ports[0]!;
    await api(port, "POST", "/v1/users", { userId: "eve", password: "pw-eve" });
    const { token } = await api<{ token: string }>(port, "POST", "/v1/sessions", {
      userId: "eve",
      password: "pw-eve",
      peerAddr: "127.0.0.1:9",
    });
    await api(port, "POST", "/v1/groups", { groupId: "evil" }, token);
    const registered = {
      name: "a.bin",
      size: file.size,
      sha1: file.sha1,
      pieces: file.pieces.toString("base64"),
    };
    await api(port, "POST", "/v1/groups/evil/files", registered, token);
    const { ticket } = await api<{ ticket: string }>(
      port,
      "POST",
      "/v1/groups/evil/files/a.bin/download",
      {},
      token,
    );

    // every probe at once: a refusal may hold the connection open a little before closing it
    const [garbage, unknown, requestFirst, forgedTicket, noTicket, otherGroup] = await Promise.all([
      // (a) garbage: an impossible frame length; a well-framed unknown message; a request with no handshake
      probe(alice.port, [Buffer.alloc(64, 0xff)]),
      probe(alice.port, [Buffer.from([0, 0, 0, 2, 0x7f, 0])]),
      probe(alice.port, [greedy]),
      // (b) the forged ticket, (c) no ticket, (d) the other group's ticket
      probe(alice.port, [encodeHandshake(fileId, forged), greedy]),
      probe(alice.port, [encodeHandshake(fileId, ""), greedy]),
      probe(alice.port, [encodeHandshake(fileId, ticket), greedy]),
    ]);
    assertTurnedAway("garbage", garbage);
    assertTurnedAway("unknown message", unknown);
    assertTurnedAway("request before handshake", requestFirst);
    assertTurnedAway("forged ticket", forgedTicket, RejectCode.BAD_TICKET);
    assertTurnedAway("no ticket", noTicket, RejectCode.BAD_TICKET);
    assertTurnedAway("another group's ticket", otherGroup, RejectCode.NOT_SHARED);

    // the sharer is still up, and still serves a member
    assert.ok(alice.alive, alice.dump());
    const copy = await download(bob, "g1", "a.bin", dir("bob"));
    await assertSameFile(copy, file);
    assert.ok(alice.alive);
  });
});
