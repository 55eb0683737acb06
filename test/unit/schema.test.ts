import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findRoute, ROUTES } from "../../src/shared/api.js";
import { open, type Schema, strict, validate } from "../../src/shared/schema.js";

const item = open(
  {
    name: { type: "string", minLength: 1, maxLength: 5 },
    size: { type: "integer", minimum: 0, maximum: 10 },
    ratio: { type: "number" },
    ok: { type: "boolean" },
    role: { type: "string", enum: ["a", "b"] },
    hex: { type: "string", pattern: "^[0-9a-f]{4}$" },
  },
  ["name", "size"],
);
const list: Schema = open({ items: { type: "array", items: item, maxItems: 3 } }, ["items"]);

describe("schema validator", () => {
  it("accepts conforming values, optional fields absent and unknown fields in open objects", () => {
    assert.equal(validate(item, { name: "x", size: 0 }), undefined);
    assert.equal(
      validate(item, { name: "abcde", size: 10, ratio: 0.5, ok: false, role: "b", hex: "00ff", extra: [1] }),
      undefined,
    );
    assert.equal(validate(list, { items: [] }), undefined);
  });

  it("names the place of the first problem, never the hostile value", () => {
    const cases: [unknown, RegExp][] = [
      [{}, /^answer: 'items' is missing$/],
      [null, /^answer: expected an object, got null$/],
      [[], /^answer: expected an object, got a list$/],
      ["{}", /^answer: expected an object, got string$/],
      [{ items: {} }, /^answer\.items: expected a list, got an object$/],
      [{ items: [1, 2, 3, 4] }, /^answer\.items: more than 3 items$/],
      [{ items: [{ size: 1 }] }, /^answer\.items\[0\]: 'name' is missing$/],
      [{ items: [{ name: 7, size: 1 }] }, /^answer\.items\[0\]\.name: expected a string, got number$/],
      [{ items: [{ name: "", size: 1 }] }, /shorter than 1/],
      [{ items: [{ name: "\u001b[31mlong", size: 1 }] }, /longer than 5/],
      [{ items: [{ name: "x", size: 1.5 }] }, /expected a whole number/],
      [{ items: [{ name: "x", size: -1 }] }, /below 0/],
      [{ items: [{ name: "x", size: 11 }] }, /above 10/],
      [{ items: [{ name: "x", size: "1" }] }, /expected a number, got string/],
      [{ items: [{ name: "x", size: 1, ratio: Number.NaN }] }, /expected a number/],
      [{ items: [{ name: "x", size: 1, ok: "yes" }] }, /expected true or false/],
      [{ items: [{ name: "x", size: 1, role: "c" }] }, /not one of a, b/],
      [{ items: [{ name: "x", size: 1, hex: "zz" }] }, /not of the form/],
    ];
    for (const [value, re] of cases) {
      const e = validate(list, value);
      assert.match(e ?? "(accepted)", re, JSON.stringify(value));
      assert.ok(!e!.includes("\u001b"));
    }
  });

  it("refuses unknown fields in strict objects, and a value for __proto__ is just a field", () => {
    const s = strict({ a: { type: "string" } }, ["a"]);
    assert.equal(validate(s, { a: "x" }), undefined);
    assert.match(validate(s, { a: "x", b: 1 })!, /unexpected field/);
    assert.match(validate(s, JSON.parse('{"a":"x","__proto__":{"a":1}}'))!, /unexpected field/);
    assert.equal(validate(open({ a: { type: "string" } }, []), JSON.parse('{"__proto__":1}')), undefined);
  });
});

describe("route contract", () => {
  it("finds each route from an encoded path, query strings allowed", () => {
    assert.equal(findRoute("GET", "/v1/groups")?.name, "listGroups");
    assert.equal(findRoute("GET", "/v1/groups?prefix=a&limit=5")?.name, "listGroups");
    assert.equal(findRoute("POST", "/v1/groups")?.name, "createGroup");
    assert.equal(findRoute("POST", "/v1/groups/g%20x/requests/bob/accept")?.name, "acceptRequest");
    assert.equal(findRoute("POST", "/v1/groups/g/requests/bob/reject")?.name, "rejectRequest");
    assert.equal(findRoute("DELETE", "/v1/groups/g/members/bob")?.name, "removeMember");
    assert.equal(findRoute("POST", "/v1/groups/g/files/a%2Fb/download")?.name, "download");
    assert.equal(findRoute("DELETE", "/v1/groups/g/files/x/shares")?.name, "stopShare");
    assert.equal(findRoute("GET", "/v1/groups/g/files/x/shares"), undefined);
    assert.equal(findRoute("GET", "/v1/groups/g/extra/files"), undefined);
    assert.equal(findRoute("POST", "/v1/sessions/device")?.name, "deviceLogin");
    assert.equal(findRoute("DELETE", `/v1/sessions?device=${"a".repeat(32)}`)?.name, "logout");
    assert.equal(findRoute("DELETE", `/v1/devices/${"a".repeat(32)}`)?.name, "revokeDevice");
  });

  it("declares one route per method and path, and only health, keys, create user and the logins public", () => {
    const seen = new Set<string>();
    for (const r of Object.values(ROUTES)) {
      const key = `${r.method} ${r.path}`;
      assert.ok(!seen.has(key), `declared twice: ${key}`);
      seen.add(key);
    }
    const open = Object.entries(ROUTES)
      .filter(([, r]) => "public" in r && r.public)
      .map(([n]) => n)
      .sort();
    assert.deepEqual(open, ["createUser", "deviceLogin", "health", "keys", "login"]);
  });
});
