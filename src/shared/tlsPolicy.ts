/**
 * TLS as every link of groupshare speaks it: 1.3 only (no downgrade to a version
 * with weaker handshakes), ChaCha20-Poly1305 first: it moved more bytes than
 * AES-128-GCM in every measurement on this project's machine (the bench's crypto part;
 * DESIGN-NOTES.md, "Encryption"). node sets TLS 1.3 suites through `ciphers`; it has no `ciphersuites`.
 */
export const TLS_VERSION = {
  minVersion: "TLSv1.3",
  maxVersion: "TLSv1.3",
  ciphers: "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
} as const;
