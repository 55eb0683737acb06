/**
 * The flash crowd's lab: a tracker host (uncapped), a seeder host and up to
 * `maxPeers` downloader hosts on one switch, the caps set per case; the fluid
 * bound; and a sampler of every host's upload while a run goes on.
 */
import { type Host, Lab, mbit } from "../../test/lab/lab.js";

export interface CaseCaps {
  /** the seeder's upload, Mbit/s */
  seedUp: number;
  /** each downloader's upload, Mbit/s */
  peerUp: number;
}

export class Crowd {
  private constructor(
    readonly lab: Lab,
    readonly tracker: Host,
    readonly seed: Host,
    readonly peers: Host[],
  ) {}

  static async create(maxPeers: number): Promise<Crowd> {
    const lab = await Lab.create();
    try {
      const tracker = await lab.host("tracker");
      const seed = await lab.host("seed");
      const peers: Host[] = [];
      for (let i = 1; i <= maxPeers; i++) peers.push(await lab.host(`d${i}`));
      return new Crowd(lab, tracker, seed, peers);
    } catch (err) {
      await lab.close();
      throw err;
    }
  }

  /** Upload caps for a case (downloads uncapped, as in the fluid model). */
  async setCaps(caps: CaseCaps): Promise<void> {
    await this.seed.setCaps({ up: mbit(caps.seedUp) });
    for (const p of this.peers) await p.setCaps({ up: mbit(caps.peerUp) });
  }

  close(): Promise<void> {
    return this.lab.close();
  }
}

/**
 * The fluid model's lower bound on the last completion (Kumar and Ross, 2006):
 * the seeder must send every bit once, and the swarm must deliver N copies with
 * all uploads together: max(F/u_s, N·F/(u_s + Σu_i)), in seconds.
 */
export function fluidBound(fileBytes: number, n: number, caps: CaseCaps): number {
  const bits = fileBytes * 8;
  return Math.max(bits / mbit(caps.seedUp), (n * bits) / mbit(caps.seedUp + n * caps.peerUp));
}

/** Bytes each host had uploaded at one moment. */
export interface UploadSample {
  t: number;
  up: Map<string, number>;
}

/** Samples every host's upload counter (at its switch port) every `everyMs` until stopped. */
export class UploadSampler {
  readonly samples: UploadSample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    readonly crowd: Crowd,
    readonly everyMs = 250,
  ) {}

  async start(): Promise<void> {
    await this.#sample();
    this.#timer = setInterval(() => void this.#sample(), this.everyMs);
  }

  async stop(): Promise<UploadSample[]> {
    clearInterval(this.#timer);
    await this.#sample();
    return this.samples;
  }

  async #sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const t = Date.now();
      const dev = await this.crowd.lab.switch.devCounters();
      const up = new Map<string, number>();
      for (const h of [this.crowd.tracker, this.crowd.seed, ...this.crowd.peers]) {
        // the switch's port receives what the host sends
        up.set(h.name, dev.get(h.port)?.rx ?? 0);
      }
      this.samples.push({ t, up });
    } finally {
      this.#busy = false;
    }
  }
}
