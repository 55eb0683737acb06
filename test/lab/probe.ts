/**
 * A TCP probe run inside lab hosts (node dist/test/lab/probe.js ...): one line
 * of output per event, for the lab's tests to wait on.
 *
 *   listen <ip> <port>             prints "listening", then "got <bytes> from <ip>" per connection
 *   send <ip> <port> <bytes>       prints "sent <bytes> in <seconds>" once the listener has them all
 *   sink <ip> <port>               prints "listening"; sends each connection as many bytes as its first line asks
 *   fetch <ip> <port> <bytes>      asks a sink for <bytes>; prints "fetched <bytes> in <seconds>"
 *   connect <ip> <port> <ms>       prints "connected", "error <CODE>" or "no answer in <ms> ms"
 */
import { connect, createServer, type Socket } from "node:net";

const CHUNK = 64 * 1024;

function listen(host: string, port: number, serve?: (s: Socket, wanted: number) => void): void {
  const server = createServer((s) => {
    let got = 0;
    let head = "";
    s.on("data", (d) => {
      if (serve && got === 0 && head.length < 32) {
        head += d.toString("latin1");
        const nl = head.indexOf("\n");
        if (nl < 0) return;
        serve(s, Number(head.slice(0, nl)));
        return;
      }
      got += d.length;
    });
    s.on("error", () => {});
    s.on("end", () => {
      process.stdout.write(`got ${got} from ${s.remoteAddress}\n`);
      // the sender's clock stops when we close: every byte arrived by then
      s.end();
    });
  });
  server.listen(port, host, () => process.stdout.write("listening\n"));
}

/** Writes `bytes` under backpressure, then half-closes. */
function pump(s: Socket, bytes: number): void {
  const chunk = Buffer.alloc(CHUNK, 0x61);
  let left = bytes;
  const more = () => {
    while (left > 0) {
      const n = Math.min(CHUNK, left);
      left -= n;
      if (!s.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
        s.once("drain", more);
        return;
      }
    }
    s.end();
  };
  more();
}

function send(host: string, port: number, bytes: number): void {
  const started = performance.now();
  const s = connect({ host, port }, () => pump(s, bytes));
  s.on("error", (err: NodeJS.ErrnoException) => {
    process.stdout.write(`error ${err.code ?? err.message}\n`);
    process.exitCode = 1;
  });
  s.on("data", () => {});
  s.on("close", (hadError) => {
    if (!hadError)
      process.stdout.write(`sent ${bytes} in ${((performance.now() - started) / 1000).toFixed(3)}\n`);
  });
}

/** Asks a `sink` for `bytes` and times their arrival: a download through the host's down cap. */
function fetchBytes(host: string, port: number, bytes: number): void {
  const started = performance.now();
  let got = 0;
  const s = connect({ host, port }, () => s.write(`${bytes}\n`));
  s.on("data", (d) => {
    got += d.length;
    if (got >= bytes) {
      process.stdout.write(`fetched ${got} in ${((performance.now() - started) / 1000).toFixed(3)}\n`);
      s.destroy();
    }
  });
  s.on("error", (err: NodeJS.ErrnoException) => {
    process.stdout.write(`error ${err.code ?? err.message}\n`);
    process.exitCode = 1;
  });
}

function tryConnect(host: string, port: number, ms: number): void {
  const s = connect({ host, port });
  const timer = setTimeout(() => {
    process.stdout.write(`no answer in ${ms} ms\n`);
    s.destroy();
  }, ms);
  s.on("connect", () => {
    clearTimeout(timer);
    process.stdout.write("connected\n");
    s.destroy();
  });
  s.on("error", (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    process.stdout.write(`error ${err.code ?? err.message}\n`);
  });
}

const [mode, host, portText, extra] = process.argv.slice(2);
const port = Number(portText);
// `node --test dist/test/` runs every file under test/, this one too, with no arguments
if (mode === undefined) process.exit(0);
if (!host || !Number.isInteger(port)) {
  process.stderr.write("usage: probe listen|sink|send|fetch|connect <ip> <port> [bytes|ms]\n");
  process.exit(2);
}
if (mode === "listen") listen(host, port);
else if (mode === "sink") listen(host, port, (s, wanted) => pump(s, wanted));
else if (mode === "send") send(host, port, Number(extra));
else if (mode === "fetch") fetchBytes(host, port, Number(extra));
else if (mode === "connect") tryConnect(host, port, Number(extra));
else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
