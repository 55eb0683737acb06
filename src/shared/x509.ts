import { createHash, createPublicKey, type KeyObject, randomBytes, sign, X509Certificate } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";

/**
 * A minimal DER encoder for X.509 v3 certificates signed with Ed25519 (RFC 5280,
 * RFC 8410) or ECDSA P-256 (RFC 5758): what a tracker or a client needs to present a key over TLS. Node can
 * parse certificates but not make them. Trust never rests on anything in these
 * certificates but their public key (see spkiFingerprint), except for the CA and
 * address extensions, which are here so tests can build a chain the system way.
 */

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);
const ED25519 = seq(Buffer.from([0x06, 0x03, 0x2b, 0x65, 0x70])); // 1.3.101.112, no parameters
// 1.2.840.10045.4.3.2, no parameters (RFC 5758 3.2)
const ECDSA_SHA256 = seq(Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));

/**
 * How `key` signs: Ed25519, or ECDSA P-256 with SHA-256, which browsers take where
 * they take no Ed25519 certificate (the web UI's HTTPS). Node's ECDSA signature is DER,
 * as X.509 wants it.
 */
function signatureAlgorithm(key: KeyObject): { id: Buffer; hash: string | null } {
  if (key.asymmetricKeyType === "ed25519") return { id: ED25519, hash: null };
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1")
    return { id: ECDSA_SHA256, hash: "sha256" };
  throw new Error(`certificates are signed with Ed25519 or ECDSA P-256, not ${key.asymmetricKeyType}`);
}
const COMMON_NAME = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]); // 2.5.4.3
const BASIC_CONSTRAINTS = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]); // 2.5.29.19
const SUBJECT_ALT_NAME = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]); // 2.5.29.17
const TRUE = tlv(0x01, Buffer.from([0xff]));

const name = (cn: string) => seq(tlv(0x31, seq(COMMON_NAME, tlv(0x0c, Buffer.from(cn, "utf8")))));

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${iso}Z`));
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split(".").map(Number));
  if (!isIPv6(ip)) throw new Error(`'${ip}' is not an IP address`);
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const words = (s: string | undefined) => (s ? s.split(":").map((w) => Number.parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  for (const [i, w] of all.entries()) out.writeUInt16BE(w, i * 2);
  return out;
}

export interface CertificateOptions {
  /** The certified key's public half. */
  publicKey: KeyObject;
  /** The signer's private key (the certified key's own, for a self-signed certificate). */
  signingKey: KeyObject;
  commonName: string;
  /** The signer's name (the certificate's own by default: self-signed). */
  issuerName?: string;
  /** A CA certificate (basicConstraints CA:TRUE). */
  ca?: boolean;
  /** IP addresses the certificate names (subjectAltName). */
  ips?: string[];
  /** From now (less a day, for clocks behind) to the end of 9999 unless given. */
  notAfter?: Date;
}

/** A certificate as PEM, signed with Ed25519 or ECDSA P-256 (the signing key's kind). */
export function makeCertificate(o: CertificateOptions): string {
  const extensions: Buffer[] = [];
  if (o.ca) extensions.push(seq(BASIC_CONSTRAINTS, TRUE, tlv(0x04, seq(TRUE))));
  if (o.ips?.length)
    extensions.push(seq(SUBJECT_ALT_NAME, tlv(0x04, seq(...o.ips.map((ip) => tlv(0x87, ipBytes(ip)))))));
  const alg = signatureAlgorithm(o.signingKey);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, and no leading zero byte
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // v3
    tlv(0x02, serial),
    alg.id,
    name(o.issuerName ?? o.commonName),
    seq(
      time(new Date(Date.now() - 86_400_000)),
      time(o.notAfter ?? new Date(Date.UTC(9999, 11, 31, 23, 59, 59))),
    ),
    name(o.commonName),
    o.publicKey.export({ type: "spki", format: "der" }),
    ...(extensions.length ? [tlv(0xa3, seq(...extensions))] : []),
  );
  const signature = sign(alg.hash, tbs, o.signingKey);
  const der = seq(tbs, alg.id, tlv(0x03, Buffer.from([0]), signature));
  const lines = der.toString("base64").match(/.{1,64}/g)!;
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** A self-signed certificate for `privateKey`'s public half. */
export function selfSignedCertificate(privateKey: KeyObject, commonName: string): string {
  return makeCertificate({ publicKey: createPublicKey(privateKey), signingKey: privateKey, commonName });
}

/**
 * What identifies a key: `sha256:` and the base64url SHA-256 of its SubjectPublicKeyInfo
 * (DER). It names the key, not the certificate: a certificate re-issued for the same key
 * keeps its fingerprint.
 */
export function spkiFingerprint(spkiDer: Buffer): string {
  return `sha256:${createHash("sha256").update(spkiDer).digest("base64url")}`;
}

/** The fingerprint of a certificate's key (a PEM, or a peer's certificate from a TLS socket). */
export function certificateFingerprint(cert: string | Buffer | X509Certificate): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return spkiFingerprint(x.publicKey.export({ type: "spki", format: "der" }));
}

/** The form spkiFingerprint writes; anything else in tracker_info.txt is a mistake. */
export const FINGERPRINT_PATTERN = /^sha256:[A-Za-z0-9_-]{43}$/;
