/**
 * TLS as every link of groupshare speaks it: 1.3 only (no downgrade to a version
 * with weaker handshakes), AES-128-GCM preferred (the fastest here with AES-NI;
 * see DESIGN-NOTES.md, "Encryption").
 */
export const TLS_VERSION = {
  minVersion: "TLSv1.3",
  maxVersion: "TLSv1.3",
  ciphersuites: "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
} as const;
