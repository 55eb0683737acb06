/**
 * node dist/bench/profile.js <file.cpuprofile> [top]
 *
 * Summarises a V8 CPU profile (from `npm run bench -- --cpu-prof DIR`): self time
 * per function, heaviest first, with where it is defined.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [path, topArg] = process.argv.slice(2);
if (!path) {
  process.stderr.write("usage: profile.js <file.cpuprofile> [top]\n");
  process.exit(2);
}
const top = Number(topArg ?? 25);
const p = JSON.parse(readFileSync(path, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const n = byId.get(p.samples[i]!)!;
  const dt = p.timeDeltas[i] ?? 0;
  total += dt;
  const f = n.callFrame;
  const key = `${f.functionName || "(anonymous)"}  ${f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : ""}`;
  self.set(key, (self.get(key) ?? 0) + dt);
}
process.stdout.write(`${basename(path)}: ${(total / 1000).toFixed(0)} ms sampled\n`);
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  process.stdout.write(
    `${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}\n`,
  );
}
