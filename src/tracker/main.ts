import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { SESSION_IDLE_MS } from "../shared/constants.js";
import { formatHostPort, readTrackerInfo } from "../shared/trackerInfo.js";
import { certificateFingerprint } from "../shared/x509.js";
import { type ConnectionLimits, connectionCap, DEFAULT_CONNECTION_LIMITS } from "./connections.js";
import { buildTrackerServer } from "./server.js";
import { TrackerService } from "./service.js";
import { openStore } from "./store/index.js";

const USAGE = `usage: tracker <tracker_info.txt> <tracker_no> [--db <sqlite file | postgres://...>] [--session-idle <s>]
               [--tls-cert <PEM file> --tls-key <PEM file>]
               [--max-connections <n>] [--max-connections-per-address <n>] [--handshake-timeout <s>]

Runs tracker number <tracker_no> (counting from 1) of tracker_info.txt.
The store is, in order: --db, $GROUPSHARE_DB, or groupshare.db beside tracker_info.txt
(so trackers started from the same tracker_info.txt on one host share it).
--session-idle: a session with no heartbeat for this many seconds ends (default ${SESSION_IDLE_MS / 1000}).
The API is HTTPS (TLS 1.3). Every tracker of a store presents the store's own key and
self-signed certificate, whose fingerprint it prints at start; --tls-cert/--tls-key
present a CA-issued certificate (with its chain) and key instead, which clients check
against the system's CAs.
--max-connections: TCP connections at once (default ${DEFAULT_CONNECTION_LIMITS.total}, or what the open-file limit leaves);
--max-connections-per-address: from one address or IPv6 /64 (default ${DEFAULT_CONNECTION_LIMITS.perAddress}; 127.0.0.1 and ::1
are exempt); --handshake-timeout: seconds a connection has for its TLS handshake, and
then for its first request (default ${DEFAULT_CONNECTION_LIMITS.handshakeMs / 1000}).
Type 'quit' (or send SIGINT/SIGTERM) to stop.`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const positional: string[] = [];
  let db: string | undefined;
  let idleText: string | undefined;
  const tlsFiles: { cert?: string; key?: string } = {};
  /** the flags of ConnectionLimits: the field each sets, and what one unit of its value is in that field */
  const limitFlags = {
    "--max-connections": ["total", 1] as const,
    "--max-connections-per-address": ["perAddress", 1] as const,
    "--handshake-timeout": ["handshakeMs", 1000] as const,
  };
  const limitTexts: { flag: keyof typeof limitFlags; text: string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    if (a === "--db") {
      db = argv[++i];
      if (!db) fail("--db needs a value: a SQLite file path or a postgres:// URL");
    } else if (a.startsWith("--db=")) db = a.slice(5);
    else if (a === "--session-idle") {
      idleText = argv[++i];
      if (!idleText) fail("--session-idle needs a number of seconds");
    } else if (a.startsWith("--session-idle=")) idleText = a.slice("--session-idle=".length);
    else if (a === "--tls-cert" || a === "--tls-key") {
      const file = argv[++i];
      if (!file) fail(`${a} needs a PEM file`);
      tlsFiles[a === "--tls-cert" ? "cert" : "key"] = file;
    } else if (Object.hasOwn(limitFlags, a.split("=")[0]!)) {
      const flag = a.split("=")[0] as keyof typeof limitFlags;
      const text = a.includes("=") ? a.slice(flag.length + 1) : argv[++i];
      if (!text) fail(`${flag} needs a number`);
      limitTexts.push({ flag, text });
    } else if (a.startsWith("-")) fail(`unknown option '${a}'\n${USAGE}`);
    else positional.push(a);
  }
  if (positional.length !== 2) fail(`expected 2 arguments, got ${positional.length}\n${USAGE}`);
  const [infoPath, noText] = positional as [string, string];
  let trackers: ReturnType<typeof readTrackerInfo>;
  try {
    trackers = readTrackerInfo(infoPath);
  } catch (err) {
    fail((err as Error).message);
  }
  const no = Number(noText);
  if (!Number.isInteger(no) || no < 1) fail(`tracker number '${noText}' must be a whole number from 1`);
  let sessionIdleMs = SESSION_IDLE_MS;
  if (idleText !== undefined) {
    const seconds = Number(idleText);
    if (!Number.isFinite(seconds) || seconds < 1)
      fail(`--session-idle '${idleText}' must be a number of seconds, at least 1`);
    sessionIdleMs = seconds * 1000;
  }
  const connections: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS };
  for (const { flag, text } of limitTexts) {
    const [field, unit] = limitFlags[flag];
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) fail(`${flag} '${text}' must be a whole number, at least 1`);
    connections[field] = n * unit;
  }
  const room = connectionCap(connections.total);
  if (room) {
    process.stderr.write(
      `warning: the open-file limit is ${room.fds}: at most ${room.cap} connections, not ${connections.total} (raise it with ulimit -n)\n`,
    );
    connections.total = room.cap;
  }
  const me = trackers.find((t) => t.no === no);
  if (!me) fail(`${infoPath} lists ${trackers.length} tracker(s): there is no line for tracker ${no}`);
  if ((tlsFiles.cert === undefined) !== (tlsFiles.key === undefined))
    fail("--tls-cert and --tls-key go together: the certificate and its key");
  let ownTls: { cert: Buffer; key: Buffer } | undefined;
  if (tlsFiles.cert && tlsFiles.key) {
    try {
      ownTls = { cert: readFileSync(tlsFiles.cert), key: readFileSync(tlsFiles.key) };
      certificateFingerprint(ownTls.cert);
    } catch (err) {
      fail(`cannot use --tls-cert ${tlsFiles.cert} --tls-key ${tlsFiles.key}: ${(err as Error).message}`);
    }
  }

  const storeSpec = db ?? process.env.GROUPSHARE_DB ?? join(dirname(resolve(infoPath)), "groupshare.db");
  const shown = storeSpec.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@"); // never print a password
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(storeSpec, { warn: (line) => process.stderr.write(`${line}\n`) });
  } catch (err) {
    fail(`cannot open store ${shown}: ${(err as Error).message}`);
  }
  const service = new TrackerService(store, Date.now, { trackers, sessionIdleMs, self: me });
  await service.init();
  const tls = ownTls ?? { cert: service.tlsIdentity.certificate, key: service.tlsIdentity.privateKey };
  let app: ReturnType<typeof buildTrackerServer>;
  try {
    app = buildTrackerServer({
      service,
      tls,
      connections,
      log: (_level, line) => process.stderr.write(`${line}\n`),
    });
    await app.ready();
  } catch (err) {
    await store.close();
    fail(
      `cannot serve TLS with ${ownTls ? "--tls-cert/--tls-key" : "the store's key"}: ${(err as Error).message}`,
    );
  }
  try {
    await app.listen({ host: me.host, port: me.port });
  } catch (err) {
    await store.close();
    const e = err as NodeJS.ErrnoException;
    fail(
      e.code === "EADDRINUSE"
        ? `${formatHostPort(me.host, me.port)} is already in use: is tracker ${no} running already?`
        : `cannot listen on ${formatHostPort(me.host, me.port)}: ${e.message}`,
    );
  }
  const fingerprint = certificateFingerprint(
    Buffer.from(tls.cert)
      .toString("utf8")
      .split(/(?<=-----END CERTIFICATE-----)/)[0]!,
  );
  process.stdout.write(
    `tracker ${no} key ${fingerprint}${ownTls ? " (--tls-cert: clients check it against their CAs)" : " (pin it: add it to each line of tracker_info.txt as a third field)"}\n`,
  );
  process.stdout.write(`tracker ${no} listening on ${formatHostPort(me.host, me.port)} (store: ${shown})\n`);

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`tracker ${no} stopping (${why})\n`);
    // bounded: a hung keep-alive connection must not keep us alive
    const timer = setTimeout(() => process.exit(1), 5_000);
    timer.unref();
    await app.close();
    await store.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  // A tracker started without a terminal (stdin at EOF) keeps running: only 'quit' or a signal stop it.
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    const cmd = line.trim();
    if (cmd === "quit" || cmd === "exit") void stop("quit");
    else if (cmd !== "") process.stdout.write(`unknown command '${cmd}': type 'quit' to stop the tracker\n`);
  });
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
