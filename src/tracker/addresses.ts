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
 * IPv4 networks that are never on the Internet, so that an address in one can only
 * name a machine near its claimer: RFC 1918's, and RFC 2544's 198.18.0.0/15 (not
 * routed either; the network lab's LANs are there). Not 100.64.0.0/10: a carrier's
 * NAT shares it among its customers.
 */
const LAN_V4: readonly [string, number][] = [
  ["10.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
];

function v4(ip: string): number {
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** An address of a private network: LAN_V4, or an IPv6 unique local address (fc00::/7). */
export function isLanAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 6) return /^f[cd]/i.test(canonical(ip));
  if (family !== 4) return false;
  return LAN_V4.some(([net, bits]) => Math.floor(v4(ip) / 2 ** (32 - bits)) === v4(net) / 2 ** (32 - bits));
}

export function isLoopback(ip: string): boolean {
  const family = isIP(ip);
  return family === 4 ? ip.startsWith("127.") : family === 6 && canonical(ip) === "::1";
}

const isUnspecified = (ip: string) => ip === "0.0.0.0" || (isIP(ip) === 6 && canonical(ip) === "::");

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

/** A member as the tracker knows it: where it is seen (its login's source IP, the port it claimed) and what it claimed. */
export interface SeenMember {
  peerAddr: string;
  claimedAddr: string;
}

/**
 * Where a member at `fromIp` is sent to reach `m`: by a downloader dialling a sharer,
 * or by a sharer dialling a downloader back. The address the tracker saw, except that
 * a member at the same IP (behind the same router, which need not hairpin) is sent to
 * the address `m` claimed when that is a LAN address and `m` was not seen at a
 * loopback address. So a claim can send other members only to where the claimer is
 * seen, or into the private network behind that address: never to a host on the
 * Internet, and from a shared host, never past its loopback.
 *
 * `addr` undefined: hand out nothing. `ignored`: why `m`'s claim of another specific
 * address is not what this member gets.
 */
export function reachAddress(
  m: SeenMember,
  fromIp: string,
  trackers: readonly TrackerAddress[],
): { addr: string | undefined; ignored: string | undefined } {
  const seenAddr = handOut(m.peerAddr, trackers) ? m.peerAddr : undefined;
  const seen = parseHostPort(m.peerAddr);
  const claimed = parseHostPort(m.claimedAddr);
  const seenHere = (ignored?: string) => ({ addr: seenAddr, ignored });
  if (typeof seen === "string" || typeof claimed === "string") return seenHere();
  if (canonical(seen.host) !== canonical(fromIp)) return seenHere();
  if (canonical(claimed.host) === canonical(seen.host) || isUnspecified(claimed.host)) return seenHere();
  if (isLoopback(seen.host)) return seenHere("a member seen at a loopback address is reached only there");
  if (!isLanAddress(claimed.host))
    return seenHere("not a LAN address (10/8, 172.16/12, 192.168/16, 198.18/15, fc00::/7)");
  if (!handOut(m.claimedAddr, trackers))
    return seenHere(peerAddressProblem(claimed.host, claimed.port, trackers) ?? "not IP:PORT");
  return { addr: m.claimedAddr, ignored: undefined };
}
