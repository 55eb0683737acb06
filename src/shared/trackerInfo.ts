import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { FINGERPRINT_PATTERN } from "./x509.js";

export interface TrackerAddress {
  /** 1-based tracker number, as on the command line. */
  no: number;
  host: string;
  port: number;
  /** The tracker's key fingerprint (sha256:…), when tracker_info.txt pins it. */
  fingerprint?: string;
}

/**
 * tracker_info.txt: one tracker per line, `IP PORT` or `IP:PORT` (`[v6]:PORT` for IPv6),
 * then optionally the tracker's key fingerprint (`sha256:…`, as ./tracker prints it);
 * blank lines and `#` comments ignored; tracker numbers count from 1.
 */
export function parseTrackerInfo(text: string, fileName = "tracker_info.txt"): TrackerAddress[] {
  const trackers: TrackerAddress[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const where = `${fileName} line ${i + 1}`;
    const pinned = /^(.*\S)\s+(sha256:\S*)$/.exec(line);
    if (pinned && !FINGERPRINT_PATTERN.test(pinned[2]!))
      throw new Error(
        `${where}: '${pinned[2]}' is not a key fingerprint (sha256: and 43 base64url characters)`,
      );
    const addr = parseHostPort(pinned ? pinned[1]! : line);
    if (typeof addr === "string")
      throw new Error(
        `${where}: ${addr} (expected 'IP PORT' or 'IP:PORT', then optionally a fingerprint, got '${line}')`,
      );
    trackers.push({ no: trackers.length + 1, ...addr, ...(pinned && { fingerprint: pinned[2]! }) });
  });
  if (trackers.length === 0)
    throw new Error(`${fileName}: no tracker listed (expected lines of 'IP PORT' or 'IP:PORT')`);
  return trackers;
}

export function readTrackerInfo(path: string): TrackerAddress[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  return parseTrackerInfo(text, path);
}

/** `IP:PORT`, `IP PORT` or `[IPv6]:PORT`; returns an explanation string when malformed. */
export function parseHostPort(s: string): { host: string; port: number } | string {
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(\S+)$/.exec(s);
  const parts = s.split(/\s+/);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (parts.length === 2) {
    host = parts[0]!;
    portText = parts[1]!;
  } else if (parts.length === 1 && s.lastIndexOf(":") > 0 && isIP(s) !== 6) {
    const at = s.lastIndexOf(":");
    host = s.slice(0, at);
    portText = s.slice(at + 1);
  } else {
    return "malformed address";
  }
  if (host === "localhost") host = "127.0.0.1";
  if (isIP(host) === 0) return `'${host}' is not an IP address`;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return `'${portText}' is not a port (1-65535)`;
  }
  return { host, port: Number(portText) };
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
