/**
 * The tests' one way to a tracker's API: HTTPS with the tracker's key pinned, as a
 * client does it (src/client/tracker/trackerTls.ts). Trackers register their fingerprint by
 * port when they start (Cluster.tracker, or a test's in-process server), so a test
 * that talks to a port nobody registered fails instead of trusting whoever is there.
 */
import { generateKeyPairSync } from "node:crypto";
import { type AddressInfo, connect as netConnect } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { FastifyInstance } from "fastify";
import { type Agent, type ClientRequest, type IncomingMessage, request } from "node:http";
import { KnownTrackers } from "../../src/client/tracker/knownTrackers.js";
import { newPeerIdentity, type PeerIdentity } from "../../src/client/peerIdentity.js";
import { TrackerAgent, TrackerTrust } from "../../src/client/tracker/trackerTls.js";
import { TLS_VERSION } from "../../src/shared/tlsPolicy.js";
import { certificateFingerprint, selfSignedCertificate } from "../../src/shared/x509.js";
import { buildTrackerServer, type TrackerServerOptions } from "../../src/tracker/server.js";
import type { TrackerService } from "../../src/tracker/service.js";

/** Serves `service`'s API on 127.0.0.1 (a free port) with the store's TLS identity, pinned for trackerCall. */
export async function serveTracker(
  service: TrackerService,
  log?: TrackerServerOptions["log"],
): Promise<{ app: FastifyInstance; port: number }> {
  const { certificate, privateKey } = service.tlsIdentity;
  const app = buildTrackerServer({ service, tls: { cert: certificate, key: privateKey }, log });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  pinTracker(port, certificateFingerprint(certificate));
  return { app, port };
}

/** A fresh key and self-signed certificate, as server options (TLS 1.3 only), and its fingerprint. */
export function tlsIdentity(name = "test tracker") {
  const key = generateKeyPairSync("ed25519").privateKey;
  const cert = selfSignedCertificate(key, name);
  return {
    server: { cert, key: key.export({ type: "pkcs8", format: "pem" }) as string, ...TLS_VERSION },
    fingerprint: certificateFingerprint(cert),
  };
}

/**
 * The peer key raw test users log in with unless they bring their own, and the
 * identity their raw peer connections present (so tickets they get name it).
 */
export const TEST_PEER: PeerIdentity = newPeerIdentity();

/**
 * A TLS 1.3 connection to a peer server on 127.0.0.1:`port`, presenting `identity`
 * (TEST_PEER by default; null: no certificate). 'secureConnect' is when to write.
 * The sharer's key is not checked: these are the tests' hostile or raw downloaders.
 */
export function peerSocket(
  port: number,
  opts: { identity?: PeerIdentity | null; localAddress?: string } = {},
): TLSSocket {
  const id = opts.identity === undefined ? TEST_PEER : opts.identity;
  const tcp = netConnect({
    host: "127.0.0.1",
    port,
    ...(opts.localAddress && { localAddress: opts.localAddress }),
  });
  tcp.on("error", () => {});
  return tlsConnect({
    socket: tcp,
    ...(id && { key: id.key, cert: id.cert }),
    rejectUnauthorized: false,
    ...TLS_VERSION,
  });
}

/** Resolves when a TLS 1.2 handshake with 127.0.0.1:`port` fails (TLS 1.3 only there); rejects if it succeeds. */
export async function refusesTls12(port: number): Promise<void> {
  const old = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false, maxVersion: "TLSv1.2" });
  try {
    const err = await new Promise<Error | undefined>((resolve) => {
      old.once("secureConnect", () => resolve(undefined));
      old.once("error", resolve);
    });
    if (!err) throw new Error(`127.0.0.1:${port} completed a TLS 1.2 handshake`);
    if (!/protocol version|alert/i.test(err.message)) throw err;
  } finally {
    old.destroy();
  }
}

const pins = new Map<number, string>();

/** Records the fingerprint of the tracker on 127.0.0.1:`port`. */
export function pinTracker(port: number, fingerprint: string): void {
  pins.set(port, fingerprint);
}

export function pinOf(port: number): string {
  const fp = pins.get(port);
  if (!fp)
    throw new Error(
      `no tracker key registered for port ${port}: start it with Cluster.tracker or pinTracker`,
    );
  return fp;
}

/** An agent for the tracker on 127.0.0.1:`port`, its key pinned; keep-alive. */
export function trackerAgent(port: number, opts: { localAddress?: string; maxSockets?: number } = {}): Agent {
  const tracker = { no: 1, host: "127.0.0.1", port, fingerprint: pinOf(port) };
  return new TrackerAgent(tracker, new TrackerTrust([tracker], new KnownTrackers()), {
    keepAlive: true,
    maxSockets: opts.maxSockets ?? 4,
    ...(opts.localAddress && { localAddress: opts.localAddress }),
  });
}

export interface TrackerAnswer {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: raw answers are whatever the tracker sent; tests check them
  body: any;
  /** The registry code of an error answer. */
  code?: string;
}

export interface TrackerRequest {
  method: string;
  path: string;
  body?: unknown;
  /** Sent as it is, instead of `body` as JSON (malformed JSON, a chosen content-type). */
  rawBody?: string | Buffer;
  token?: string;
  /** A source address of 127/8 (a new connection from it, unless `agent` is given). */
  localAddress?: string;
  agent?: Agent;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Bound on the answer read (default 32 MiB). */
  maxBytes?: number;
}

/**
 * An answer's body, whole, and parsed if it is JSON, with the registry code of an error
 * answer. Past `maxBytes` the request is destroyed (its 'error' reports it) and this never settles.
 */
export function readAnswer(
  req: ClientRequest,
  res: IncomingMessage,
  maxBytes: number,
): Promise<Omit<TrackerAnswer, "status">> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    res.on("data", (c: Buffer) => {
      total += c.length;
      if (total > maxBytes) req.destroy(new Error(`answer over ${maxBytes} bytes`));
      else chunks.push(c);
    });
    res.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = text === "" ? undefined : JSON.parse(text);
      } catch {
        body = undefined;
      }
      const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
      resolve({ text, body, ...(code && { code }) });
    });
  });
}

/**
 * One request to the tracker on 127.0.0.1:`port`, bounded in time and size. Sent once
 * more on a new connection when a kept-alive one turns out closed before any answer,
 * as the client does (the tracker closes idle connections after 30 s).
 */
export async function trackerCall(port: number, r: TrackerRequest): Promise<TrackerAnswer> {
  try {
    return await trackerCallOnce(port, r);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
    if (!e.reusedSocket || (e.code !== "ECONNRESET" && e.code !== "EPIPE")) throw err;
    return await trackerCallOnce(port, r);
  }
}

function trackerCallOnce(port: number, r: TrackerRequest): Promise<TrackerAnswer> {
  // a login carries the key of the client's peer server; raw test users have TEST_PEER's
  const body =
    r.method === "POST" &&
    r.path === "/v1/sessions" &&
    typeof r.body === "object" &&
    r.body !== null &&
    !("peerKey" in r.body)
      ? { ...r.body, peerKey: TEST_PEER.publicKey }
      : r.body;
  const payload =
    r.rawBody !== undefined
      ? Buffer.from(r.rawBody)
      : body === undefined
        ? undefined
        : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = {};
  if (payload) {
    headers["content-type"] = "application/json";
    headers["content-length"] = payload.length;
  }
  Object.assign(headers, r.headers);
  if (r.token) headers.authorization = `Bearer ${r.token}`;
  const own = r.agent ? undefined : trackerAgent(port, { localAddress: r.localAddress, maxSockets: 1 });
  const timeoutMs = r.timeoutMs ?? 30_000;
  const maxBytes = r.maxBytes ?? 32 * 1024 * 1024;
  return new Promise<TrackerAnswer>((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      method: r.method,
      path: r.path,
      headers,
      agent: r.agent ?? own,
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`${r.method} ${r.path}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    let answered = false;
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(Object.assign(err, { reusedSocket: req.reusedSocket && !answered }));
    });
    req.on("response", (res) => {
      answered = true;
      void readAnswer(req, res, maxBytes).then((a) => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, ...a });
      });
    });
    req.end(payload);
  }).finally(() => own?.destroy());
}
