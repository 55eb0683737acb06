/**
 * The tests' one way to a tracker's API: HTTPS with the tracker's key pinned, as a
 * client does it (src/client/trackerTls.ts). Trackers register their fingerprint by
 * port when they start (Cluster.tracker, or a test's in-process server), so a test
 * that talks to a port nobody registered fails instead of trusting whoever is there.
 */
import { generateKeyPairSync } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { type Agent, request } from "node:http";
import { KnownTrackers } from "../../src/client/knownTrackers.js";
import { TrackerAgent } from "../../src/client/trackerTls.js";
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
  return new TrackerAgent({ no: 1, host: "127.0.0.1", port, fingerprint: pinOf(port) }, new KnownTrackers(), {
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

/** One request to the tracker on 127.0.0.1:`port`, bounded in time and size. */
export function trackerCall(port: number, r: TrackerRequest): Promise<TrackerAnswer> {
  const payload =
    r.rawBody !== undefined
      ? Buffer.from(r.rawBody)
      : r.body === undefined
        ? undefined
        : Buffer.from(JSON.stringify(r.body));
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
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let total = 0;
      res.on("data", (c: Buffer) => {
        total += c.length;
        if (total > maxBytes) req.destroy(new Error(`answer over ${maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = text === "" ? undefined : JSON.parse(text);
        } catch {
          body = undefined;
        }
        const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
        resolve({ status: res.statusCode ?? 0, text, body, ...(code && { code }) });
      });
    });
    req.end(payload);
  }).finally(() => own?.destroy());
}
