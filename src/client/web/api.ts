import { GsError } from "../../shared/errors.js";
import type { Engine } from "../engine/engine.js";
import { pathCandidates } from "../cli/completion.js";
import type { RouteTable, WebRequest } from "./routes.js";

/** What the API needs beyond the engine's operations. */
export interface ApiContext {
  engine: Engine;
  /** The peer server's IP:PORT, shown on the page. */
  peerAddr: string;
}

/** A body's field as text; BAD_REQUEST names it when it is missing or not a string. */
function text(body: unknown, field: string, optional = false): string {
  const v = (body as Record<string, unknown> | undefined)?.[field];
  if (v === undefined && optional) return "";
  if (typeof v !== "string") throw new GsError("BAD_REQUEST", `the body needs '${field}' as a string`);
  return v;
}

/** A body's field as a whole number, as the operation's text argument (the operation checks its range). */
function whole(body: unknown, field: string): string {
  const v = (body as Record<string, unknown> | undefined)?.[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new GsError("BAD_REQUEST", `the body needs '${field}' as a whole number`);
  }
  return String(v);
}

function flag(body: unknown, field: string): boolean {
  const v = (body as Record<string, unknown> | undefined)?.[field];
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new GsError("BAD_REQUEST", `'${field}' is true or false`);
  return v;
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
        // remembered, the shell's remember_login: a restart logs in again by itself
        const op = flag(r.body, "remember") ? "rememberLogin" : "login";
        const result = await e.call(op, [text(r.body, "userId"), text(r.body, "password")]);
        return { ...session(), ...result };
      },
    },
    { method: "DELETE", path: "/api/v1/session", handler: () => e.call("logout", []) },
    {
      method: "POST",
      path: "/api/v1/users",
      status: 201,
      handler: (r) => e.call("createUser", [text(r.body, "userId"), text(r.body, "password")]),
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
      handler: (r) => e.call("createGroup", [text(r.body, "groupId")]),
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
      handler: (r) => e.call("uploadFile", [text(r.body, "path"), text(r.body, "groupId")]),
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
      handler: (r) =>
        e.call("downloadFile", [text(r.body, "groupId"), text(r.body, "name"), text(r.body, "destination")]),
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
      handler: (r) => e.call("moveDownload", [p(r, "groupId"), p(r, "name"), whole(r.body, "position")]),
    },
    {
      method: "PUT",
      path: "/api/v1/queue",
      handler: (r) => e.call("setMaxActive", [whole(r.body, "maxActive")]),
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
        const groupId = text(r.body, "groupId", true);
        const name = text(r.body, "name", true);
        if (name !== "" && groupId === "")
          throw new GsError("BAD_REQUEST", "a download's limit needs its 'groupId'");
        const scope = groupId === "" ? [] : name === "" ? [groupId] : [groupId, name];
        return e.call("setLimit", [text(r.body, "direction"), text(r.body, "rate"), ...scope] as [
          string,
          string,
        ]);
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
