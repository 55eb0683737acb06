/**
 * `npm run demo`: a tracker and three clients started for real on 127.0.0.1,
 * driven through accounts, groups and a shared file, printed as it goes.
 * Everything lives in a temporary directory that is removed at the end.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { Cluster, type Proc } from "../test/helpers/procs.js";

const FILE_SIZE = 24 * 1024 * 1024 + 4321; // several pieces, last one short

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function step(who: Proc, command: string, until: RegExp): Promise<void> {
  const from = who.lines.length;
  process.stdout.write(`${bold(`${who.label}>`)} ${command}\n`);
  await who.run(command, until, 60_000);
  for (const line of who.lines.slice(from)) process.stdout.write(`    ${line}\n`);
}

function say(text: string): void {
  process.stdout.write(`\n# ${text}\n`);
}

async function sha1Of(path: string): Promise<string> {
  const h = createHash("sha1");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function main(): Promise<void> {
  const c = await Cluster.create(1);
  try {
    say(`tracker_info.txt in ${c.dir}; the tracker keeps its SQLite store beside it`);
    await c.tracker(1);
    const alice = await c.client("alice");
    const bob = await c.client("bob");
    const carol = await c.client("carol");

    say("accounts and a group");
    await step(alice, "create_user alice s3cret", /created/);
    await step(alice, "login alice s3cret", /logged in/);
    await step(alice, "create_group movies", /created/);
    await step(bob, "create_user bob hunter2", /created/);
    await step(bob, "login bob hunter2", /logged in/);
    await step(bob, "join_group movies", /asked to join/);
    await step(carol, "create_user carol pa55", /created/);
    await step(carol, "login carol pa55", /logged in/);
    await step(carol, "join_group movies", /asked to join/);
    await step(bob, "list_files movies", /^error:/);
    await step(alice, "requests list_requests movies", /^carol/);
    await step(alice, "accept_request movies bob", /member/);
    await step(alice, "accept_request movies carol", /member/);
    await step(carol, "list_groups", /^movies/);

    say(`alice shares a ${FILE_SIZE}-byte file; bob, then carol, download it`);
    const src = join(c.dir, "holiday video.bin");
    const fh = await open(src, "w");
    for (let at = 0; at < FILE_SIZE; at += 1 << 20)
      await fh.write(randomBytes(Math.min(1 << 20, FILE_SIZE - at)));
    await fh.close();
    await step(alice, `upload_file "${src}" movies`, /uploaded/);
    await step(bob, "list_files movies", /holiday/);
    await step(bob, `download_file movies "holiday video.bin" ${c.dir}/bob.bin`, /downloading/);
    await bob.expect(/download complete/, 60_000);
    process.stdout.write(`    ${bob.lines.at(-1)}\n`);
    await step(bob, "show_downloads", /^\[C\]/);
    await step(carol, `download_file movies "holiday video.bin" ${c.dir}/carol.bin`, /downloading/);
    await carol.expect(/download complete/, 60_000);
    process.stdout.write(`    ${carol.lines.at(-1)}\n`);

    say("who served carol? (bob shares each piece from the moment he has it)");
    await step(alice, "show_shares", /served=/);
    await step(bob, "show_shares", /served=/);
    const want = await sha1Of(src);
    for (const who of ["bob", "carol"]) {
      const got = await sha1Of(join(c.dir, `${who}.bin`));
      process.stdout.write(
        `    ${who}'s copy: sha1 ${got} ${got === want ? "(identical)" : "(DIFFERENT!)"}\n`,
      );
      if (got !== want) throw new Error(`${who}'s copy differs`);
    }

    say("logout stops sharing; login shares again with no command");
    await step(alice, "logout", /logged out/);
    await step(bob, "logout", /logged out/);
    await step(carol, "list_files movies", /holiday/);
    await step(alice, "login alice s3cret", /sharing again/);
    await step(carol, "list_files movies", /holiday/);
    await step(alice, "leave_group movies", /left group/);
    await step(bob, "login bob hunter2", /sharing again/);
    await step(bob, "list_groups", /^movies/);
    say("demo done");
  } finally {
    await c.close();
  }
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
