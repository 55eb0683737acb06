import { mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseHostPort, readTrackerInfo } from "../shared/trackerInfo.js";
import { GroupshareClient } from "./client.js";
import { historyEntry } from "./cli/commands.js";
import { eventLine } from "./cli/lines.js";
import { Shell } from "./cli/shell.js";

const USAGE = `usage: client <IP>:<PORT> <tracker_info.txt> [--state-dir DIR]

Starts a client: a command shell for you, and a peer server on IP:PORT that
serves the pieces you share. State (your shares and partial downloads) is kept
in --state-dir, $GROUPSHARE_STATE_DIR, or ~/.groupshare. Type help once started.`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const positional: string[] = [];
  let stateDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    if (a === "--state-dir") {
      stateDir = argv[++i];
      if (!stateDir) fail("--state-dir needs a directory");
    } else if (a.startsWith("--state-dir=")) stateDir = a.slice("--state-dir=".length);
    else if (a.startsWith("-")) fail(`unknown option '${a}'\n${USAGE}`);
    else positional.push(a);
  }
  if (positional.length !== 2) fail(`expected 2 arguments, got ${positional.length}\n${USAGE}`);
  const [addrText, infoPath] = positional as [string, string];
  const addr = parseHostPort(addrText);
  if (typeof addr === "string") fail(`'${addrText}': ${addr}; expected <IP>:<PORT>, e.g. 127.0.0.1:6001`);
  let trackers: ReturnType<typeof readTrackerInfo>;
  try {
    trackers = readTrackerInfo(infoPath);
  } catch (err) {
    fail((err as Error).message);
  }
  const dir = resolve(stateDir ?? process.env.GROUPSHARE_STATE_DIR ?? join(homedir(), ".groupshare"));

  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  let shell: Shell | undefined;
  const client = new GroupshareClient({
    trackers,
    host: addr.host,
    port: addr.port,
    stateDir: dir,
  });
  // the engine's news, in the shell's words: above the prompt once there is one
  client.events.subscribe((e) => {
    if (e.type === "hashing") return shell?.progress(`hashing ${e.name}`, e.done, e.total);
    const said = eventLine(e);
    if (!said) return;
    if (shell) shell.event(said.line, said.warning);
    else (said.warning ? process.stderr : process.stdout).write(`${said.line}\n`);
  });
  try {
    await client.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    fail(
      e.code === "EADDRINUSE"
        ? `${addrText} is already in use: choose another port for this client`
        : `cannot listen on ${addrText}: ${e.message}`,
    );
  }
  shell = new Shell(client.engine, tty);
  const sh = shell;

  const historyPath = join(dir, "history");
  const history = tty
    ? (await readFile(historyPath, "utf8").catch(() => "")).split("\n").filter(Boolean).reverse()
    : [];
  // a closed terminal (SIGHUP) must not crash us before the state is saved
  for (const s of [process.stdout, process.stderr]) s.on("error", () => {});

  // Every way of leaving comes here, once: the history, then the client's state, then exit.
  // A script's status says whether every command and download worked.
  let leaving: Promise<void> | undefined;
  const leave = (): Promise<void> => {
    leaving ??= (async () => {
      sh.close();
      if (tty) {
        const kept = sh.history.slice(0, 1000).map(historyEntry).reverse();
        await mkdir(dir, { recursive: true });
        await writeFile(historyPath, `${kept.join("\n")}\n`, { mode: 0o600 }).catch(() => {});
      }
      await client.close();
      // a person at a terminal saw each error; a script's caller learns of them here
      process.exit(!tty && (sh.failures > 0 || client.engine.downloadFailures > 0) ? 1 : 0);
    })();
    return leaving;
  };
  process.on("SIGTERM", () => void leave());
  process.on("SIGHUP", () => void leave());
  // on a terminal, Ctrl-C is the shell's (it clears the line); from a script it leaves
  if (!tty) process.on("SIGINT", () => void leave());

  const ending = await sh.run(history);
  // a script's end, or quit in a script, waits for its downloads; a person's quit or Ctrl-C does not
  if (!tty && !leaving) {
    await client.engine.whenDownloadsDone();
  } else if (client.engine.downloading) {
    process.stdout.write(`downloads in flight stop here (${ending}); they resume at your next login\n`);
  }
  await leave();
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
