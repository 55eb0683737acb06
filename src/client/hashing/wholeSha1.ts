import { Worker } from "node:worker_threads";

/** The SHA1 (hex) of the first `length` bytes of a file, computed on a worker thread. */
export function wholeFileSha1(path: string, length: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./sha1Worker.js", import.meta.url), { workerData: { path, length } });
    worker.once("message", (m: { sha1?: string; error?: string }) => {
      if (m.sha1) resolve(m.sha1);
      else reject(new Error(m.error ?? "hashing failed"));
      void worker.terminate();
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`hashing worker exited with code ${code}`));
    });
  });
}
