/**
 * TLS as every link of groupshare speaks it: 1.3 only (no downgrade to a version
 * with weaker handshakes), AES-128-GCM first. On this project's machine (AES-NI) a
 * 1 GiB transfer between two processes cost the sender 0.93 to 0.99 s of CPU with
 * AES-128-GCM against 1.20 to 1.22 s with ChaCha20-Poly1305, and the receiver 1.63 to
 * 1.71 s against 1.91 to 2.03 s: CPU, not the cipher's speed in one process, is what a
 * 2-core box runs out of (DESIGN-NOTES.md, "Encryption"). ChaCha20-Poly1305 stays
 * offered, for peers without AES instructions. node sets TLS 1.3 suites through
 * `ciphers`; it has no `ciphersuites`.
 */
export const TLS_VERSION = {
  minVersion: "TLSv1.3",
  maxVersion: "TLSv1.3",
  ciphers: "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
} as const;

/**
 * Largest plaintext of our TLS records on a relay leg: 22 bytes of record framing less
 * than the tracker's own record, so each of ours crosses the relay as one of its
 * records, one read and one write there instead of two (the relay's profile: every
 * 16 KiB record of ours arrived as 16,384 bytes and then 22).
 */
export const RELAYED_FRAGMENT = 16_384 - 22;
