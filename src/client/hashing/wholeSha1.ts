import { Worker } from "node:worker_threads";

/**
 * The SHA1 (hex) of the first `length` bytes of the open file `fd`, computed on a
 * worker thread. The caller keeps `fd` open until the promise settles; aborting stops
 * the worker, and the promise rejects only once it has stopped reading.
 */
export function wholeFileSha1(
  fd: number,
  length: number,
  path: string,
  signal: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./sha1Worker.js", import.meta.url), {
      workerData: { fd, length, path },
    });
    const stop = () => void worker.terminate();
    signal.addEventListener("abort", stop, { once: true });
    worker.once("message", (m: { sha1?: string; error?: string }) => {
      if (m.sha1) resolve(m.sha1);
      else reject(new Error(m.error ?? "hashing failed"));
      void worker.terminate();
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      signal.removeEventListener("abort", stop);
      reject(new Error(signal.aborted ? "hashing stopped" : `hashing worker exited with code ${code}`));
    });
  });
}
