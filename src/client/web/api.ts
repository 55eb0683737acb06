import { GsError } from "../../shared/errors.js";
import { type Infer, type Schema, strict, validate } from "../../shared/schema.js";
import type { Engine } from "../engine/engine.js";
import { pathCandidates } from "../cli/completion.js";
import type { RouteTable, WebRequest } from "./routes.js";

/** What the API needs beyond the engine's operations. */
export interface ApiContext {
  engine: Engine;
  /** The peer server's IP:PORT, shown on the page. */
  peerAddr: string;
}

const word = { type: "string" } as const;
/** A whole number as the shell's commands take it (the operation checks its range). */
const count = { type: "integer", minimum: 0, maximum: 2 ** 31 } as const;

/** The bodies the API takes, each checked whole before its operation runs: unknown fields are refused. */
const BODIES = {
  login: strict({ userId: word, password: word, remember: { type: "boolean" } }, ["userId", "password"]),
  user: strict({ userId: word, password: word }, ["userId", "password"]),
  group: strict({ groupId: word }, ["groupId"]),
  share: strict({ path: word, groupId: word }, ["path", "groupId"]),
  download: strict({ groupId: word, name: word, destination: word }, ["groupId", "name", "destination"]),
  move: strict({ position: count }, ["position"]),
  queue: strict({ maxActive: count }, ["maxActive"]),
  limit: strict({ direction: word, rate: word, groupId: word, name: word }, ["direction", "rate"]),
} as const;

/** The request's body as `schema` says, or BAD_REQUEST naming what is wrong (a missing body is an empty one). */
function bodyOf<S extends Schema>(r: WebRequest, schema: S): Infer<S> {
  const body = r.body ?? {};
  const wrong = validate(schema, body, "body");
  if (wrong) throw new GsError("BAD_REQUEST", wrong);
  return body as Infer<S>;
}

/**
 * The JSON API: each route is one engine operation (the same checks, login and ids, as
 * the shell's commands), its answer the operation's typed result as JSON.
 */
export function apiRoutes(c: ApiContext): RouteTable {
  const e = c.engine;
  const session = () => ({
    loggedIn: e.userId !== undefined,
    userId: e.userId ?? null,
    peerAddr: c.peerAddr,
    remembered: e.remembered,
  });
  const p = (r: WebRequest, name: string) => r.params[name] ?? "";
  return [
    { method: "GET", path: "/api/v1/session", handler: async () => session() },
    {
      method: "POST",
      path: "/api/v1/session",
      handler: async (r) => {
        const b = bodyOf(r, BODIES.login);
        // remembered, the shell's remember_login: a restart logs in again by itself
        const result = await e.call(b.remember ? "rememberLogin" : "login", [b.userId, b.password]);
        return { ...session(), ...result };
      },
    },
    { method: "DELETE", path: "/api/v1/session", handler: () => e.call("logout", []) },
    {
      method: "POST",
      path: "/api/v1/users",
      status: 201,
      handler: (r) => {
        const b = bodyOf(r, BODIES.user);
        return e.call("createUser", [b.userId, b.password]);
      },
    },
    {
      method: "GET",
      path: "/api/v1/groups",
      handler: (r) => e.call("listGroups", r.query.prefix ? [r.query.prefix] : []),
    },
    {
      method: "POST",
      path: "/api/v1/groups",
      status: 201,
      handler: (r) => e.call("createGroup", [bodyOf(r, BODIES.group).groupId]),
    },
    {
      method: "POST",
      path: "/api/v1/groups/:groupId/join",
      handler: (r) => e.call("joinGroup", [p(r, "groupId")]),
    },
    {
      method: "POST",
      path: "/api/v1/groups/:groupId/leave",
      handler: (r) => e.call("leaveGroup", [p(r, "groupId")]),
    },
    {
      method: "GET",
      path: "/api/v1/groups/:groupId/requests",
      handler: (r) => e.call("listRequests", [p(r, "groupId")]),
    },
    {
      method: "POST",
      path: "/api/v1/groups/:groupId/requests/:userId/accept",
      handler: (r) => e.call("acceptRequest", [p(r, "groupId"), p(r, "userId")]),
    },
    {
      method: "POST",
      path: "/api/v1/groups/:groupId/requests/:userId/reject",
      handler: (r) => e.call("rejectRequest", [p(r, "groupId"), p(r, "userId")]),
    },
    {
      method: "GET",
      path: "/api/v1/groups/:groupId/members",
      handler: (r) => e.call("listMembers", [p(r, "groupId")]),
    },
    {
      method: "DELETE",
      path: "/api/v1/groups/:groupId/members/:userId",
      handler: (r) => e.call("removeMember", [p(r, "groupId"), p(r, "userId")]),
    },
    {
      method: "GET",
      path: "/api/v1/groups/:groupId/files",
      handler: (r) => e.call("listFiles", [p(r, "groupId")]),
    },
    {
      method: "GET",
      path: "/api/v1/shares",
      handler: async () => ({ shares: await e.call("showShares", []) }),
    },
    {
      method: "POST",
      path: "/api/v1/shares",
      status: 201,
      handler: (r) => {
        const b = bodyOf(r, BODIES.share);
        return e.call("uploadFile", [b.path, b.groupId]);
      },
    },
    {
      method: "DELETE",
      path: "/api/v1/shares/:groupId/:name",
      handler: (r) => e.call("stopShare", [p(r, "groupId"), p(r, "name")]),
    },
    { method: "GET", path: "/api/v1/downloads", handler: async () => ({ downloads: e.downloads() }) },
    {
      method: "POST",
      path: "/api/v1/downloads",
      status: 201,
      handler: (r) => {
        const b = bodyOf(r, BODIES.download);
        return e.call("downloadFile", [b.groupId, b.name, b.destination]);
      },
    },
    {
      method: "POST",
      path: "/api/v1/downloads/pause-all",
      handler: () => e.call("pauseAll", []),
    },
    {
      method: "POST",
      path: "/api/v1/downloads/resume-all",
      handler: () => e.call("resumeAll", []),
    },
    {
      method: "POST",
      path: "/api/v1/downloads/:groupId/:name/pause",
      handler: (r) => e.call("pauseDownload", [p(r, "groupId"), p(r, "name")]),
    },
    {
      method: "POST",
      path: "/api/v1/downloads/:groupId/:name/resume",
      handler: (r) => e.call("resumeDownload", [p(r, "groupId"), p(r, "name")]),
    },
    {
      method: "POST",
      path: "/api/v1/downloads/:groupId/:name/move",
      handler: (r) =>
        e.call("moveDownload", [p(r, "groupId"), p(r, "name"), String(bodyOf(r, BODIES.move).position)]),
    },
    {
      method: "PUT",
      path: "/api/v1/queue",
      handler: (r) => e.call("setMaxActive", [String(bodyOf(r, BODIES.queue).maxActive)]),
    },
    {
      method: "DELETE",
      path: "/api/v1/downloads/:groupId/:name",
      handler: (r) => e.call("cancelDownload", [p(r, "groupId"), p(r, "name")]),
    },
    { method: "GET", path: "/api/v1/limits", handler: () => e.call("showLimits", []) },
    {
      method: "PUT",
      path: "/api/v1/limits",
      handler: (r) => {
        const { direction, rate, groupId, name } = bodyOf(r, BODIES.limit);
        if (name !== undefined && groupId === undefined)
          throw new GsError("BAD_REQUEST", "a download's limit needs its 'groupId'");
        const scope = groupId === undefined ? [] : name === undefined ? [groupId] : [groupId, name];
        return e.call("setLimit", [direction, rate, ...scope] as [string, string]);
      },
    },
    {
      method: "GET",
      path: "/api/v1/paths",
      handler: async (r) => {
        if (e.userId === undefined) throw new GsError("UNAUTHORIZED", "not logged in");
        const found = await pathCandidates(r.query.prefix ?? "");
        return { entries: found.map((f) => ({ path: f.path, dir: f.folder })) };
      },
    },
  ];
}
