/**
 * groupshare in the lab: a real ./tracker and real ./client processes, each in
 * its lab host, listening on that host's address.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Proc, ROOT } from "../helpers/procs.js";
import type { Host } from "./lab.js";

/** The port every client's peer server listens on (each host has an address of its own). */
export const PEER_PORT = 6881;
export const TRACKER_PORT = 7000;

/** Writes tracker_info.txt for one tracker on `host`, starts it and waits until it listens. */
export async function startTracker(
  host: Host,
  dir: string,
  opts: ClientOptions = {},
): Promise<{ proc: Proc; infoPath: string }> {
  const infoPath = join(dir, "tracker_info.txt");
  await writeFile(infoPath, `${opts.addr ?? host.addr} ${TRACKER_PORT}\n`);
  const args = [infoPath, "1"];
  const proc = opts.nodeArgs
    ? host.spawn(
        `tracker@${host.name}`,
        process.execPath,
        [...opts.nodeArgs, join(ROOT, "dist/src/tracker/main.js"), ...args],
        { env: opts.env },
      )
    : host.spawn(`tracker@${host.name}`, join(ROOT, "tracker"), args, { env: opts.env });
  await proc.expect(/listening on/);
  return { proc, infoPath };
}

export interface ClientOptions {
  /** node flags (e.g. --cpu-prof, --import): the client's entry point then runs under node directly */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** the address to listen on instead of the host's own (e.g. 127.0.0.2: the host's loopback) */
  addr?: string;
  /** a client's options after its own (e.g. --max-down 4MB/s) */
  args?: string[];
}

/** Starts a client on `host` (peer server on its address), state in `dir`/state-<label>. */
export function startClient(
  host: Host,
  label: string,
  infoPath: string,
  dir: string,
  opts: ClientOptions = {},
): Proc {
  const args = [
    `${opts.addr ?? host.addr}:${PEER_PORT}`,
    infoPath,
    "--state-dir",
    join(dir, `state-${label}`),
    ...(opts.args ?? []),
  ];
  // node refuses --cpu-prof in NODE_OPTIONS: flags go on node's own command line
  return opts.nodeArgs
    ? host.spawn(
        label,
        process.execPath,
        [...opts.nodeArgs, join(ROOT, "dist/src/client/main.js"), ...args],
        {
          env: opts.env,
        },
      )
    : host.spawn(label, join(ROOT, "client"), args, { env: opts.env });
}
