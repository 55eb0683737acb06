import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { parseTrackerInfo } from "../../src/shared/trackerInfo.js";
import {
  certificateFingerprint,
  FINGERPRINT_PATTERN,
  makeCertificate,
  selfSignedCertificate,
  spkiFingerprint,
} from "../../src/shared/x509.js";

describe("x509: certificates made with node:crypto", () => {
  it("a self-signed certificate parses back, verifies with its own key, and names its key", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const pem = selfSignedCertificate(privateKey, "groupshare tracker");
    const x = new X509Certificate(pem);
    assert.equal(x.subject, "CN=groupshare tracker");
    assert.equal(x.issuer, "CN=groupshare tracker");
    assert.ok(x.verify(publicKey));
    assert.ok(x.checkPrivateKey(privateKey));
    assert.equal(x.validTo, "Dec 31 23:59:59 9999 GMT");
    assert.ok(new Date(x.validFrom).getTime() < Date.now());
    assert.equal(
      x.publicKey.export({ type: "spki", format: "der" }).toString("hex"),
      createPublicKey(privateKey).export({ type: "spki", format: "der" }).toString("hex"),
    );
  });

  it("signs with ECDSA P-256 too (browsers take no Ed25519 certificate), and no other key", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = makeCertificate({ publicKey, signingKey: privateKey, commonName: "web", ips: ["127.0.0.1"] });
    const x = new X509Certificate(pem);
    assert.ok(x.verify(publicKey));
    assert.ok(x.checkPrivateKey(privateKey));
    assert.equal(x.subjectAltName, "IP Address:127.0.0.1");
    assert.equal(x.publicKey.asymmetricKeyType, "ec");
    for (const other of [
      generateKeyPairSync("ec", { namedCurve: "P-384" }),
      generateKeyPairSync("rsa", { modulusLength: 1024 }),
    ])
      assert.throws(() => selfSignedCertificate(other.privateKey, "x"), /Ed25519 or ECDSA P-256/);
  });

  it("the fingerprint is the key's, not the certificate's: a re-issued certificate keeps it", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const a = selfSignedCertificate(privateKey, "a");
    const b = selfSignedCertificate(privateKey, "b");
    assert.notEqual(a, b);
    const fp = certificateFingerprint(a);
    assert.equal(certificateFingerprint(b), fp);
    assert.equal(spkiFingerprint(publicKey.export({ type: "spki", format: "der" })), fp);
    assert.match(fp, FINGERPRINT_PATTERN);
    assert.notEqual(
      certificateFingerprint(selfSignedCertificate(generateKeyPairSync("ed25519").privateKey, "a")),
      fp,
    );
  });

  it("a CA and a certificate it issues for IP addresses: the chain and the names check", () => {
    const ca = generateKeyPairSync("ed25519");
    const leaf = generateKeyPairSync("ed25519");
    const caCert = new X509Certificate(
      makeCertificate({ publicKey: ca.publicKey, signingKey: ca.privateKey, commonName: "CA", ca: true }),
    );
    const cert = new X509Certificate(
      makeCertificate({
        publicKey: leaf.publicKey,
        signingKey: ca.privateKey,
        commonName: "t",
        issuerName: "CA",
        ips: ["127.0.0.1", "2001:db8::7"],
      }),
    );
    assert.ok(caCert.ca);
    assert.ok(!cert.ca);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(ca.publicKey));
    assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(cert.checkIP("2001:db8::7"), "2001:db8::7");
    assert.equal(cert.checkIP("127.0.0.2"), undefined);
  });
});

describe("tracker_info.txt: the optional fingerprint", () => {
  const fp = certificateFingerprint(selfSignedCertificate(generateKeyPairSync("ed25519").privateKey, "t"));
  it("is a third field after either address form", () => {
    assert.deepEqual(
      parseTrackerInfo(`127.0.0.1 7001 ${fp}\n127.0.0.1:7002 ${fp}\n[::1]:7003\t${fp}\n127.0.0.1 7004\n`),
      [
        { no: 1, host: "127.0.0.1", port: 7001, fingerprint: fp },
        { no: 2, host: "127.0.0.1", port: 7002, fingerprint: fp },
        { no: 3, host: "::1", port: 7003, fingerprint: fp },
        { no: 4, host: "127.0.0.1", port: 7004 },
      ],
    );
  });
  it("refuses a malformed fingerprint, naming the line", () => {
    assert.throws(
      () => parseTrackerInfo(`127.0.0.1 7001\n127.0.0.1 7002 sha256:short\n`, "i.txt"),
      /i\.txt line 2: 'sha256:short' is not a key fingerprint/,
    );
    assert.throws(
      () => parseTrackerInfo(`127.0.0.1 7001 md5:abc\n`, "i.txt"),
      /i\.txt line 1: malformed address/,
    );
  });
});
