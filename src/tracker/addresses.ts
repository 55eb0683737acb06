import { isIP } from "node:net";
import { formatHostPort, parseHostPort, type TrackerAddress } from "../shared/trackerInfo.js";

/** A connection's source address as a plain IP: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes `a.b.c.d`. */
export function sourceIp(remote: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remote);
  return m ? m[1]! : remote;
}

/** One spelling per address, so that `0:0::1` and `::1` compare equal. */
function canonical(host: string): string {
  if (isIP(host) !== 6) return host;
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/**
 * Why `host:port` must not be handed to downloaders, or undefined when it may be:
 * not an IP, port 0, an address no peer can be at (unspecified, broadcast,
 * multicast, IPv4's reserved 240/4), or a tracker's own listening address.
 */
export function peerAddressProblem(
  host: string,
  port: number,
  trackers: readonly TrackerAddress[],
): string | undefined {
  const family = isIP(host);
  if (family === 0) return "not an IP address";
  if (!Number.isInteger(port) || port < 1 || port > 65535) return "not a port (1-65535)";
  if (family === 4) {
    const first = Number(host.split(".")[0]);
    if (first === 0) return "an unspecified address";
    if (first >= 224 && first <= 239) return "a multicast address";
    if (first >= 240) return host === "255.255.255.255" ? "the broadcast address" : "a reserved address";
  } else {
    const h = canonical(host);
    if (h === "::") return "an unspecified address";
    if (/^ff/i.test(h)) return "a multicast address";
    if (/^::ffff:/i.test(h)) return "an IPv4-mapped address";
  }
  const me = `${canonical(host)}:${port}`;
  if (trackers.some((t) => `${canonical(t.host)}:${t.port}` === me)) return "a tracker's own address";
  return undefined;
}

/** A stored address that may be handed out as it is: it parses, and passes peerAddressProblem. */
export function handOut(addr: string, trackers: readonly TrackerAddress[]): boolean {
  const p = parseHostPort(addr);
  return (
    typeof p !== "string" &&
    formatHostPort(p.host, p.port) === addr &&
    peerAddressProblem(p.host, p.port, trackers) === undefined
  );
}
