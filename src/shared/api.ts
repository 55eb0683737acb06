/**
 * The tracker's HTTP API, declared once for both sides: each route's method,
 * path, request schemas, answer schema and status, and whether it is public.
 * The tracker registers exactly these routes and authenticates every one not
 * marked `public`; the client finds the route of each call here and checks the
 * answer against it. Types of requests and answers are derived from the schemas.
 */
import {
  DEVICE_ID_PATTERN,
  DEVICE_SECRET_PATTERN,
  ID_PATTERN,
  ID_PREFIX_PATTERN,
  LIST_GROUPS_LIMIT,
  MAX_FILE_NAME_LENGTH,
  MAX_DEVICE_NAME_LENGTH,
  MAX_DEVICES_PER_USER,
  MAX_FILE_SIZE,
  MAX_PASSWORD_LENGTH,
  MAX_PIECES,
  SHA1_LENGTH,
} from "./constants.js";
import { HOSTILE_CHAR_CLASS } from "./ids.js";
import { PEER_KEY_PATTERN } from "./peerKey.js";
import { type Infer, open, type Schema, strict } from "./schema.js";

// In requests, loose bounds: the service's checkId and checkFileName then answer
// INVALID_ID / INVALID_FILE_NAME with the rule. In answers, the rules themselves:
// what a tracker sends is printed, so a hostile one cannot reach a terminal this way.
const id = { type: "string", minLength: 1, maxLength: 256 } as const;
const fileName = { type: "string", minLength: 1, maxLength: MAX_FILE_NAME_LENGTH } as const;
const idOut = { type: "string", pattern: ID_PATTERN.source } as const;
/** Text that is printed: none of the characters that could rewrite a terminal. */
const printable = (maxLength: number) =>
  ({ type: "string", minLength: 1, maxLength, pattern: `^[^${HOSTILE_CHAR_CLASS.slice(1, -1)}]*$` }) as const;
const fileNameOut = printable(MAX_FILE_NAME_LENGTH);
const password = { type: "string", minLength: 1, maxLength: MAX_PASSWORD_LENGTH } as const;
const hex40 = { type: "string", pattern: "^[0-9a-f]{40}$" } as const;
const time = { type: "integer", minimum: 0 } as const;
const count = { type: "integer", minimum: 0 } as const;
/** base64 of the concatenated 20-byte piece digests */
const pieces = { type: "string", maxLength: Math.ceil((MAX_PIECES * SHA1_LENGTH) / 3) * 4 } as const;
/** IP:PORT or [IPv6]:PORT; the tracker parses it */
const addr = { type: "string", minLength: 3, maxLength: 64 } as const;
const addrOut = {
  type: "string",
  pattern: "^(?:[0-9.]{7,15}|\\[[0-9a-fA-F:.]{2,45}\\]):[0-9]{1,5}$",
} as const;
const size = { type: "integer", minimum: 0, maximum: MAX_FILE_SIZE } as const;
/** loose: the service's peerKeyProblem answers with the rule */
const peerKeyIn = { type: "string", maxLength: 200 } as const;
/** A remembered device: its id (128 random bits, hex) and secret (256 random bits, base64url). */
const deviceId = { type: "string", pattern: DEVICE_ID_PATTERN } as const;
const deviceSecret = { type: "string", pattern: DEVICE_SECRET_PATTERN } as const;
/** A device's name is listed back to its user: printable, both ways. */
const deviceName = printable(MAX_DEVICE_NAME_LENGTH);
const session = open({ token: { type: "string", minLength: 1, maxLength: 256 }, userId: idOut }, [
  "token",
  "userId",
]);

const noBody = { type: "object", properties: {}, additionalProperties: false, maxProperties: 0 } as const;
const ok = open({ ok: { type: "boolean" } }, ["ok"]);
const groupParams = strict({ groupId: id }, ["groupId"]);
const memberParams = strict({ groupId: id, userId: id }, ["groupId", "userId"]);
const fileParams = strict({ groupId: id, name: fileName }, ["groupId", "name"]);

/**
 * Answer bounds. A list beyond these is a broken or hostile tracker: the byte
 * bound of an answer (trackerClient) stops the rest.
 */
const MAX_LISTED = 200_000;
/** Sharers handed out for one file. */
const MAX_PEERS = 10_000;

/** A peer's public key (peerKey.ts): what its peer server must prove */
const peerKey = { type: "string", pattern: PEER_KEY_PATTERN } as const;
const peer = open(
  {
    userId: idOut,
    addr: addrOut,
    key: peerKey,
    complete: { type: "boolean" },
    /** the sharer announced another address than the one seen: it is behind a router, most likely */
    nat: { type: "boolean" },
  },
  ["userId", "addr", "key", "complete"],
);
const grant = open(
  {
    ticket: { type: "string", minLength: 1, maxLength: 2048 },
    ticketExpires: time,
    peers: { type: "array", items: peer, maxItems: MAX_PEERS },
  },
  ["ticket", "ticketExpires", "peers"],
);

export interface Route {
  readonly method: "GET" | "POST" | "DELETE";
  /** fastify syntax: `:name` is a path parameter */
  readonly path: string;
  readonly params?: Schema;
  readonly query?: Schema;
  readonly body?: Schema;
  readonly response: Schema;
  /** the answer's status on success (200 when absent) */
  readonly status?: 201;
  /** served without a session; every other route needs one */
  readonly public?: true;
  /**
   * The tracker hashes a password for it (scrypt, about 160 ms of CPU, queued behind
   * others' hashes): the client waits HASHING_TIMEOUT_MS instead of TRACKER_TIMEOUT_MS.
   */
  readonly hashes?: true;
  /** The tracker holds the answer until there is one, up to SIGNAL_WAIT_MS: the client waits that long more. */
  readonly waits?: true;
}

/** What a signal asks of a sharer's client, about a downloader that cannot dial it. */
const signal = open(
  {
    seq: count,
    /**
     * reverse: dial `addr` yourself; relay: meet the downloader at tracker `relay` on
     * `circuit`; punch: answer rendezvous `punch` at tracker `tracker` from a fresh port
     */
    kind: { type: "string", enum: ["reverse", "relay", "punch"] },
    groupId: idOut,
    fileId: hex40,
    /** the downloader's key: what it must prove on the connection we then serve */
    key: peerKey,
    addr: addrOut,
    relay: addrOut,
    circuit: { type: "string", pattern: "^[0-9a-f]{32}$" },
    punch: { type: "string", pattern: "^[0-9a-f]{32}$" },
    tracker: addrOut,
  },
  ["seq", "kind", "groupId", "fileId", "key"],
);
export type Signal = Infer<typeof signal>;
const sharer = strict({ userId: id }, ["userId"]);

/**
 * The relay is not a JSON route: a client asks the tracker to turn its HTTPS
 * connection into one leg of a circuit with `GET RELAY_PATH/<circuit>`, headers
 * `Connection: Upgrade`, `Upgrade: RELAY_PROTOCOL` and its session's bearer token.
 * The tracker answers 101 once the other leg has come, then carries bytes both ways.
 */
export const RELAY_PATH = "/v1/relay";
export const RELAY_PROTOCOL = "groupshare-relay/1";

export const ROUTES = {
  health: { method: "GET", path: "/v1/health", response: ok, public: true },
  keys: {
    method: "GET",
    path: "/v1/keys",
    response: open({ publicKey: { type: "string", minLength: 1, maxLength: 4096 } }, ["publicKey"]),
    public: true,
  },
  createUser: {
    method: "POST",
    path: "/v1/users",
    body: strict({ userId: id, password }, ["userId", "password"]),
    response: open({ userId: idOut }, ["userId"]),
    status: 201,
    public: true,
    hashes: true,
  },
  /**
   * A password login. With `remember`, the answer also carries a new device credential
   * (`device`) that logs this user in again with deviceLogin, until revoked.
   */
  login: {
    method: "POST",
    path: "/v1/sessions",
    body: strict(
      {
        userId: id,
        password,
        peerAddr: addr,
        peerKey: peerKeyIn,
        remember: strict({ name: deviceName }, ["name"]),
      },
      ["userId", "password", "peerAddr", "peerKey"],
    ),
    response: open(
      { ...session.properties, device: open({ deviceId, secret: deviceSecret }, ["deviceId", "secret"]) },
      session.required,
    ),
    public: true,
    hashes: true,
  },
  /** A login with a device credential instead of the password: the same session, the same throttle. */
  deviceLogin: {
    method: "POST",
    path: "/v1/sessions/device",
    body: strict({ userId: id, deviceId, secret: deviceSecret, peerAddr: addr, peerKey: peerKeyIn }, [
      "userId",
      "deviceId",
      "secret",
      "peerAddr",
      "peerKey",
    ]),
    response: session,
    public: true,
  },
  /** Ends the session; `device` also revokes that device credential of the user (a logout that forgets the device). */
  logout: {
    method: "DELETE",
    path: "/v1/sessions",
    query: strict({ device: deviceId }, []),
    response: ok,
  },
  /** The user's remembered devices, so that a lost one can be revoked. */
  listDevices: {
    method: "GET",
    path: "/v1/devices",
    response: open(
      {
        devices: {
          type: "array",
          maxItems: MAX_DEVICES_PER_USER,
          items: open({ deviceId, name: deviceName, createdAt: time, lastUsed: time }, [
            "deviceId",
            "name",
            "createdAt",
            "lastUsed",
          ]),
        },
      },
      ["devices"],
    ),
  },
  revokeDevice: {
    method: "DELETE",
    path: "/v1/devices/:deviceId",
    params: strict({ deviceId }, ["deviceId"]),
    response: ok,
  },
  heartbeat: { method: "POST", path: "/v1/heartbeat", body: noBody, response: ok },
  listGroups: {
    method: "GET",
    path: "/v1/groups",
    query: strict({ prefix: { type: "string", pattern: ID_PREFIX_PATTERN.source } }, []),
    response: open(
      {
        total: count,
        groups: {
          type: "array",
          maxItems: LIST_GROUPS_LIMIT,
          items: open(
            {
              groupId: idOut,
              owner: idOut,
              members: count,
              role: { type: "string", enum: ["owner", "member", "pending", "none"] },
            },
            ["groupId", "owner", "members", "role"],
          ),
        },
      },
      ["groups", "total"],
    ),
  },
  createGroup: {
    method: "POST",
    path: "/v1/groups",
    body: strict({ groupId: id }, ["groupId"]),
    response: open({ groupId: idOut, owner: idOut }, ["groupId", "owner"]),
    status: 201,
  },
  joinGroup: {
    method: "POST",
    path: "/v1/groups/:groupId/requests",
    params: groupParams,
    body: noBody,
    response: ok,
    status: 201,
  },
  listRequests: {
    method: "GET",
    path: "/v1/groups/:groupId/requests",
    params: groupParams,
    response: open(
      {
        requests: {
          type: "array",
          maxItems: MAX_LISTED,
          items: open({ userId: idOut, requestedAt: time }, ["userId", "requestedAt"]),
        },
      },
      ["requests"],
    ),
  },
  acceptRequest: {
    method: "POST",
    path: "/v1/groups/:groupId/requests/:userId/accept",
    params: memberParams,
    body: noBody,
    response: ok,
  },
  rejectRequest: {
    method: "POST",
    path: "/v1/groups/:groupId/requests/:userId/reject",
    params: memberParams,
    body: noBody,
    response: ok,
  },
  /** Members only: who is in the group, the owner first, then in the order they joined. */
  listMembers: {
    method: "GET",
    path: "/v1/groups/:groupId/members",
    params: groupParams,
    response: open(
      {
        members: {
          type: "array",
          maxItems: MAX_LISTED,
          items: open(
            { userId: idOut, joinedAt: time, role: { type: "string", enum: ["owner", "member"] } },
            ["userId", "joinedAt", "role"],
          ),
        },
      },
      ["members"],
    ),
  },
  removeMember: {
    method: "DELETE",
    path: "/v1/groups/:groupId/members/:userId",
    params: memberParams,
    response: ok,
  },
  leaveGroup: {
    method: "POST",
    path: "/v1/groups/:groupId/leave",
    params: groupParams,
    body: noBody,
    response: open({ deleted: { type: "boolean" }, newOwner: idOut, withdrawn: { type: "boolean" } }, [
      "deleted",
    ]),
  },
  listFiles: {
    method: "GET",
    path: "/v1/groups/:groupId/files",
    params: groupParams,
    response: open(
      {
        files: {
          type: "array",
          maxItems: MAX_LISTED,
          items: open(
            {
              name: fileNameOut,
              size,
              sha1: hex40,
              fileId: hex40,
              sharersOnline: count,
              seedersOnline: count,
            },
            ["name", "size", "sha1", "fileId", "sharersOnline", "seedersOnline"],
          ),
        },
      },
      ["files"],
    ),
  },
  upload: {
    method: "POST",
    path: "/v1/groups/:groupId/files",
    params: groupParams,
    body: strict({ name: fileName, size, sha1: hex40, pieces }, ["name", "size", "sha1", "pieces"]),
    response: open({ ok: { type: "boolean" }, fileId: hex40 }, ["ok", "fileId"]),
    status: 201,
  },
  announce: {
    method: "POST",
    path: "/v1/groups/:groupId/files/:name/shares",
    params: fileParams,
    body: strict({ complete: { type: "boolean" } }, ["complete"]),
    response: ok,
  },
  stopShare: {
    method: "DELETE",
    path: "/v1/groups/:groupId/files/:name/shares",
    params: fileParams,
    response: ok,
  },
  /** The start of a download: the file's hashes, a ticket and the online sharers. */
  download: {
    method: "POST",
    path: "/v1/groups/:groupId/files/:name/download",
    params: fileParams,
    body: noBody,
    response: open(
      {
        file: open({ name: fileNameOut, size, sha1: hex40, fileId: hex40, pieces }, [
          "name",
          "size",
          "sha1",
          "fileId",
          "pieces",
        ]),
        ...grant.properties,
      },
      ["file", ...grant.required],
    ),
  },
  /** Waits for what trackers ask of this client (reversals, relays); `after` acknowledges up to a seq. */
  signals: {
    method: "GET",
    path: "/v1/signals",
    query: strict({ after: { type: "string", pattern: "^[0-9]{1,15}$" } }, []),
    response: open({ signals: { type: "array", items: signal, maxItems: 32 } }, ["signals"]),
    waits: true,
  },
  /** The sharer `userId` cannot be dialled: the tracker asks it to dial this downloader instead. */
  reverse: {
    method: "POST",
    path: "/v1/groups/:groupId/files/:name/reversals",
    params: fileParams,
    body: sharer,
    response: ok,
  },
  /** No direct path to the sharer `userId`: a circuit on this tracker's relay, and the sharer told to join it. */
  relay: {
    method: "POST",
    path: "/v1/groups/:groupId/files/:name/relays",
    params: fileParams,
    body: sharer,
    response: open({ relay: addrOut, circuit: { type: "string", pattern: "^[0-9a-f]{32}$" } }, [
      "relay",
      "circuit",
    ]),
  },
  /**
   * A hole punch with the sharer `userId`, asked on a fresh connection from the port
   * the downloader will punch from: answered, once the sharer has answered too, with
   * the sharer's address and port as this tracker saw them.
   */
  punch: {
    method: "POST",
    path: "/v1/groups/:groupId/files/:name/punches",
    params: fileParams,
    body: sharer,
    response: open({ addr: addrOut }, ["addr"]),
    waits: true,
  },
  /** The sharer's side of a hole punch, from the port it will punch from: the downloader's address. */
  punchAnswer: {
    method: "POST",
    path: "/v1/punches/:punchId",
    params: strict({ punchId: { type: "string", pattern: "^[0-9a-f]{32}$" } }, ["punchId"]),
    body: noBody,
    response: open({ addr: addrOut }, ["addr"]),
  },
  /** A download's refresh: a new ticket and peer list, without the hashes again. */
  peers: {
    method: "POST",
    path: "/v1/groups/:groupId/files/:name/peers",
    params: fileParams,
    body: noBody,
    response: grant,
  },
} as const satisfies Record<string, Route>;

export type RouteName = keyof typeof ROUTES;
type Part<K extends RouteName, F extends string> = (typeof ROUTES)[K] extends { [P in F]: infer S }
  ? Infer<S>
  : undefined;
/** What route K answers on success. */
export type Answer<K extends RouteName> = Part<K, "response">;
export type Body<K extends RouteName> = Part<K, "body">;
export type Params<K extends RouteName> = Part<K, "params">;
export type Query<K extends RouteName> = Part<K, "query">;

/** A route's path as a pattern over encoded paths (a parameter is one non-empty segment). */
function pathPattern(path: string): RegExp {
  const source = path
    .split("/")
    .map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}$`);
}

const MATCHERS = Object.entries(ROUTES).map(([name, route]) => ({
  name: name as RouteName,
  route: route as Route,
  re: pathPattern(route.path),
}));

/** The route that serves `method path` (an encoded path, query string allowed), if any. */
export function findRoute(method: string, path: string): { name: RouteName; route: Route } | undefined {
  const bare = path.split("?")[0]!;
  const m = MATCHERS.find((x) => x.route.method === method && x.re.test(bare));
  return m && { name: m.name, route: m.route };
}

/** A call's path parameters and query: what fills the route's `:name` segments and its query string. */
export type Input<K extends RouteName> =
  Params<K> extends undefined
    ? Query<K> extends undefined
      ? undefined
      : Query<K>
    : Query<K> extends undefined
      ? Params<K>
      : Params<K> & Query<K>;

/**
 * The encoded path of route `name` for `input`: each `:param` segment filled (encoded:
 * names may hold spaces, '/' and more), then the query's defined fields.
 */
export function routePath<K extends RouteName>(name: K, input: Input<K>): string {
  const route: Route = ROUTES[name];
  const values = (input ?? {}) as Record<string, string | undefined>;
  const path = route.path
    .split("/")
    .map((seg) => {
      if (!seg.startsWith(":")) return seg;
      const v = values[seg.slice(1)];
      if (v === undefined) throw new Error(`route ${name} needs ${seg.slice(1)}`);
      return encodeURIComponent(v);
    })
    .join("/");
  const query = Object.keys(route.query?.type === "object" ? route.query.properties : {})
    .filter((k) => values[k] !== undefined && values[k] !== "")
    .map((k) => `${k}=${encodeURIComponent(values[k]!)}`)
    .join("&");
  return query === "" ? path : `${path}?${query}`;
}
