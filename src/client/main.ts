import { mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseHostPort, readTrackerInfo } from "../shared/trackerInfo.js";
import { GroupshareClient } from "./client.js";
import { historyEntry } from "./cli/commands.js";
import { eventLine, loginLines } from "./cli/lines.js";
import { Shell } from "./cli/shell.js";
import { parseRate, type Rate } from "./limits/rate.js";
import { apiRoutes } from "./web/api.js";
import { startWeb } from "./web/start.js";
import type { WebServer } from "./web/server.js";

const USAGE = `usage: client <IP>:<PORT> <tracker_info.txt> [--state-dir DIR]
              [--web [ADDR:]PORT] [--web-allow-host NAME]... [--headless]
              [--max-up RATE] [--max-down RATE]

Starts a client: a command shell for you, and a peer server on IP:PORT that
serves the pieces you share. State (your shares and partial downloads) is kept
in --state-dir, $GROUPSHARE_STATE_DIR, or ~/.groupshare. Type help once started.

  --web [ADDR:]PORT      also serve the web UI and the JSON API (ADDR 127.0.0.1 unless
                         given; any other address is HTTPS only)
  --web-allow-host NAME  a host name the web UI may be reached by, besides its
                         address and localhost (repeat for more)
  --headless             no shell and no stdin: share until SIGTERM or SIGINT
  --max-up RATE          limit what this client sends to peers, all links together
  --max-down RATE        limit what it receives from peers (RATE: 5MB/s, 5MiB/s,
                         40Mbit/s, 0 or unlimited; set_limit changes either later)`;

/** `--web PORT` or `--web ADDR:PORT`: where the web UI listens. */
function webAddress(text: string): { host: string; port: number } {
  if (/^[0-9]{1,5}$/.test(text)) return { host: "127.0.0.1", port: Number(text) };
  const a = parseHostPort(text);
  if (typeof a === "string") fail(`--web '${text}': ${a}; expected PORT or ADDR:PORT, e.g. 8080`);
  return a;
}

/** `--max-up RATE`, `--max-down RATE`: a speed limit as parseRate reads it. */
function rateOption(option: string, text: string | undefined): Rate {
  if (!text) fail(`${option} needs a rate, e.g. 5MB/s`);
  try {
    return parseRate(text);
  } catch (err) {
    fail(`${option}: ${(err as Error).message}`);
  }
}

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const positional: string[] = [];
  let stateDir: string | undefined;
  let web: { host: string; port: number } | undefined;
  const allowHosts: string[] = [];
  let headless = false;
  let maxUp: Rate;
  let maxDown: Rate;
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
    else if (a === "--web") {
      const v = argv[++i];
      if (!v) fail("--web needs a port, or ADDR:PORT");
      web = webAddress(v);
    } else if (a === "--web-allow-host") {
      const v = argv[++i];
      if (!v) fail("--web-allow-host needs a host name");
      allowHosts.push(v);
    } else if (a === "--max-up") maxUp = rateOption(a, argv[++i]);
    else if (a === "--max-down") maxDown = rateOption(a, argv[++i]);
    else if (a === "--headless") headless = true;
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
    maxUp,
    maxDown,
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
  let webServer: WebServer | undefined;
  if (web) {
    try {
      webServer = await startWeb({
        stateDir: dir,
        host: web.host,
        port: web.port,
        allowHosts,
        routes: apiRoutes({ engine: client.engine, peerAddr: client.peerAddr }),
        // each event as the engine tells it, with the sentence the shell would print
        events: (listener) =>
          client.events.subscribe((e) => {
            const told = { ...e, text: eventLine(e)?.line };
            listener(told);
          }),
        log: (level, line) => (level === "info" ? process.stdout : process.stderr).write(`${line}\n`),
      });
    } catch (err) {
      await client.close();
      const e = err as NodeJS.ErrnoException;
      fail(
        e.code === "EADDRINUSE"
          ? `the web UI's ${web.host}:${web.port} is already in use: choose another port`
          : `cannot start the web UI: ${e.message}`,
      );
    }
    // join requests and acceptances reach the page while the web UI is up
    client.engine.watchMembership();
    for (const line of webServer.startLines()) process.stdout.write(`${line}\n`);
  }
  // a login remembered on this device comes back by itself: a restart keeps sharing
  try {
    const back = await client.session.loginRemembered();
    if (back) {
      for (const line of loginLines(back)) process.stdout.write(`${line}\n`);
      process.stdout.write("(remembered on this device: logout forgets it)\n");
    }
  } catch (err) {
    process.stderr.write(`warning: the remembered login did not work: ${(err as Error).message}\n`);
  }
  // headless: nobody types; the client shares until a signal tells it to leave
  const interactive = tty && !headless;
  shell = new Shell(client.engine, interactive);
  const sh = shell;

  const historyPath = join(dir, "history");
  const history = interactive
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
      await webServer?.close();
      if (interactive) {
        const kept = sh.history.slice(0, 1000).map(historyEntry).reverse();
        await mkdir(dir, { recursive: true });
        await writeFile(historyPath, `${kept.join("\n")}\n`, { mode: 0o600 }).catch(() => {});
      }
      await client.close();
      // a person at a terminal saw each error; a script's caller learns of them here
      process.exit(!interactive && (sh.failures > 0 || client.engine.downloadFailures > 0) ? 1 : 0);
    })();
    return leaving;
  };
  process.on("SIGTERM", () => void leave());
  process.on("SIGHUP", () => void leave());
  // on a terminal, Ctrl-C is the shell's (it clears the line); from a script or headless it leaves
  if (!interactive) process.on("SIGINT", () => void leave());

  if (headless) {
    process.stdout.write("groupshare client running headless: SIGTERM or SIGINT stops it\n");
    // no stdin is read, so nothing but a signal ends this wait
    await new Promise<never>(() => {});
  }

  const ending = await sh.run(history);
  // a script's end, or quit in a script, waits for its downloads; a person's quit or Ctrl-C does not
  if (!interactive && !leaving) {
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
