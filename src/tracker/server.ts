import type { IncomingMessage } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from "fastify";
import {
  type Answer,
  type Body,
  type Params,
  type Query,
  RELAY_PATH,
  RELAY_PROTOCOL,
  ROUTES,
  type Route,
  type RouteName,
} from "../shared/api.js";
import { MAX_BODY_BYTES, PIECE_SIZE, SHA1_LENGTH } from "../shared/constants.js";
import { ERRORS, GsError } from "../shared/errors.js";
import { printable } from "../shared/ids.js";
import { TLS_VERSION } from "../shared/tlsPolicy.js";
import { formatHostPort } from "../shared/trackerInfo.js";
import { sourceIp } from "./addresses.js";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS, guardConnections } from "./connections.js";
import { refuse } from "./relay.js";
import type { TrackerService } from "./service.js";

export type LogLevel = "info" | "warning" | "error";

export interface TrackerServerOptions {
  service: TrackerService;
  /** The certificate (PEM, with its chain) and key the tracker presents: the API is HTTPS only. */
  tls: { cert: string | Buffer; key: string | Buffer };
  /**
   * One line per refused request: `warning` for requests no groupshare client sends
   * (malformed, oversized), `info` for a user's mistakes (wrong password, not a
   * member, no such file), `error` for our own bugs. Client-supplied text is escaped.
   */
  log?: (level: LogLevel, line: string) => void;
  /** Bounds on connections (DEFAULT_CONNECTION_LIMITS unless given). */
  connections?: Partial<ConnectionLimits>;
}

/** What a handler gets: the checked request, and the session's user (empty on public routes). */
interface Ctx<K extends RouteName> {
  params: Params<K>;
  body: Body<K>;
  query: Query<K>;
  ip: string;
  /** the client's source port: with `ip`, where its router maps the connection */
  port: number;
  userId: string;
  token: string;
  /** Fires when the client goes away before its answer (a long poll stops waiting). */
  gone: AbortSignal;
}
type Handlers = { [K in RouteName]: (ctx: Ctx<K>) => Promise<Answer<K>> };

/** Longest client-supplied value a log line shows (a URL holds at most two ids and a name). */
const LOG_VALUE_CHARS = 600;
const esc = (s: string) => printable(s, LOG_VALUE_CHARS);

function bearer(req: { headers: IncomingMessage["headers"] }): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith("Bearer ") ? h.slice(7) : undefined;
}

/** Codes a groupshare client's request can earn in normal use: a user's mistake, not a warning. */
const USER_MISTAKE = (code: keyof typeof ERRORS) =>
  code !== "BAD_REQUEST" && code !== "BODY_TOO_LARGE" && code !== "NO_ROUTE";

function handlers(service: TrackerService): Handlers {
  return {
    health: async () => ({ ok: true }),
    keys: async () => ({ publicKey: service.publicKeyPem }),
    createUser: async ({ body, ip }) => {
      await service.createUser(body.userId, body.password, ip);
      return { userId: body.userId };
    },
    login: async ({ body, ip }) => ({
      ...(await service.login(
        body.userId,
        body.password,
        body.peerAddr,
        ip,
        body.peerKey,
        body.remember?.name,
      )),
      userId: body.userId,
    }),
    deviceLogin: async ({ body, ip }) => ({
      token: await service.deviceLogin(
        body.userId,
        body.deviceId,
        body.secret,
        body.peerAddr,
        ip,
        body.peerKey,
      ),
      userId: body.userId,
    }),
    logout: async ({ token, userId, query }) => {
      await service.logout(token, userId, query.device);
      return { ok: true };
    },
    listDevices: async ({ userId }) => ({ devices: await service.listDevices(userId) }),
    revokeDevice: async ({ userId, params }) => {
      await service.revokeDevice(userId, params.deviceId);
      return { ok: true };
    },
    heartbeat: async ({ token }) => {
      await service.heartbeat(token);
      return { ok: true };
    },
    listGroups: ({ userId, query }) => service.listGroups(userId, query.prefix),
    createGroup: async ({ userId, body }) => {
      await service.createGroup(userId, body.groupId);
      return { groupId: body.groupId, owner: userId };
    },
    joinGroup: async ({ userId, params }) => {
      await service.joinGroup(userId, params.groupId);
      return { ok: true };
    },
    listRequests: async ({ userId, params }) => ({
      requests: await service.listRequests(userId, params.groupId),
    }),
    listMembers: async ({ userId, params }) => ({
      members: await service.listMembers(userId, params.groupId),
    }),
    acceptRequest: async ({ userId, params }) => {
      await service.acceptRequest(userId, params.groupId, params.userId);
      return { ok: true };
    },
    rejectRequest: async ({ userId, params }) => {
      await service.rejectRequest(userId, params.groupId, params.userId);
      return { ok: true };
    },
    removeMember: async ({ userId, params }) => {
      await service.removeMember(userId, params.groupId, params.userId);
      return { ok: true };
    },
    leaveGroup: async ({ userId, params }) => await service.leaveGroup(userId, params.groupId),
    listFiles: async ({ userId, params }) => ({ files: await service.listFiles(userId, params.groupId) }),
    upload: async ({ userId, params, body }) => {
      const { name, size, sha1 } = body;
      const pieces = Buffer.from(body.pieces, "base64");
      const count = Math.ceil(size / PIECE_SIZE);
      if (pieces.length !== count * SHA1_LENGTH) {
        throw new GsError(
          "BAD_REQUEST",
          `a ${size}-byte file has ${count} pieces: expected ${count * SHA1_LENGTH} bytes of hashes`,
        );
      }
      const fileId = await service.upload(userId, params.groupId, { name, size, sha1, pieces });
      return { ok: true, fileId };
    },
    announce: async ({ userId, params, body }) => {
      await service.announce(userId, params.groupId, params.name, body.complete);
      return { ok: true };
    },
    stopShare: async ({ userId, params }) => {
      await service.stopShare(userId, params.groupId, params.name);
      return { ok: true };
    },
    download: async ({ userId, token, params, ip }) => {
      const file = await service.getFile(userId, params.groupId, params.name);
      const grant = await service.grant(userId, token, params.groupId, file.name, file.fileId, ip);
      return {
        file: {
          name: file.name,
          size: file.size,
          sha1: file.sha1,
          fileId: file.fileId,
          pieces: file.pieces.toString("base64"),
        },
        ...grant,
      };
    },
    signals: ({ userId, query, gone }) => service.waitSignals(userId, Number(query.after ?? "0"), gone),
    reverse: async ({ userId, token, params, body }) => {
      await service.reverse(userId, token, params.groupId, params.name, body.userId);
      return { ok: true };
    },
    relay: ({ userId, token, params, body }) =>
      service.relayFor(userId, token, params.groupId, params.name, body.userId),
    punch: ({ userId, token, params, body, ip, port }) =>
      service.punch(
        userId,
        token,
        params.groupId,
        params.name,
        body.userId,
        formatHostPort(sourceIp(ip), port),
      ),
    punchAnswer: async ({ userId, params, ip, port }) =>
      service.punchAnswer(userId, params.punchId, formatHostPort(sourceIp(ip), port)),
    peers: async ({ userId, token, params, ip }) => {
      const file = await service.getFile(userId, params.groupId, params.name);
      return await service.grant(userId, token, params.groupId, file.name, file.fileId, ip);
    },
  };
}

/**
 * The tracker's HTTPS server (TLS 1.3 only): exactly the routes of the contract (shared/api.ts),
 * each validated by its schemas (unknown fields are refused, not dropped), and
 * every route that is not declared public authenticated before its body is read.
 */
export function buildTrackerServer({
  service,
  tls,
  log = () => {},
  connections = {},
}: TrackerServerOptions): FastifyInstance {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...connections };
  const app = Fastify({
    logger: false,
    https: {
      ...tls,
      ...TLS_VERSION,
      // node's own timer on the handshake (120 s unless set); guardConnections bounds the first request
      handshakeTimeout: limits.handshakeMs,
      // the headers of a later request on a kept-alive connection; checked every few seconds
      headersTimeout: 10_000,
      connectionsCheckingInterval: 5_000,
    },
    bodyLimit: MAX_BODY_BYTES,
    // keep-alive connections from clients are idle between commands; bound them anyway
    // (a signal poll's request is whole when it waits: neither timeout cuts it short)
    keepAliveTimeout: 30_000,
    requestTimeout: 30_000,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    let code: keyof typeof ERRORS;
    let message: string;
    if (err instanceof GsError) {
      code = err.code;
      message = err.message;
    } else if ((err as { validation?: unknown }).validation) {
      code = "BAD_REQUEST";
      message = `invalid request: ${err.message}`;
    } else if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      code = "BODY_TOO_LARGE";
      message = `request body over ${MAX_BODY_BYTES} bytes`;
    } else if (typeof err.statusCode === "number" && err.statusCode < 500) {
      code = "BAD_REQUEST";
      message = err.message;
    } else {
      code = "INTERNAL";
      message = "internal error";
      log("error", `error: ${req.method} ${esc(req.url)}: ${err.stack ?? err.message}`);
    }
    const status = ERRORS[code].status;
    if (status < 500) {
      const line = `${esc(req.ip)} ${req.method} ${esc(req.url)} -> ${status} ${code}: ${esc(message)}`;
      if (USER_MISTAKE(code)) log("info", `info: ${line}`);
      else log("warning", `warning: ${line}`);
    }
    void reply.code(status).send({ error: { code, message } });
  });

  app.setNotFoundHandler((req, reply) => {
    log("warning", `warning: ${esc(req.ip)} ${req.method} ${esc(req.url)} -> 404 no such route`);
    void reply
      .code(404)
      .send({ error: { code: "NO_ROUTE", message: `no route ${req.method} ${printable(req.url, 200)}` } });
  });

  const sessions = new WeakMap<FastifyRequest, { userId: string; token: string }>();
  const authenticate = async (req: FastifyRequest) => {
    const token = bearer(req);
    sessions.set(req, { userId: await service.authenticate(token), token: token! });
  };

  const serve = handlers(service) as unknown as Record<RouteName, (ctx: Ctx<RouteName>) => Promise<unknown>>;
  for (const [name, r] of Object.entries(ROUTES) as [RouteName, Route][]) {
    app.route({
      method: r.method,
      url: r.path,
      schema: {
        ...(r.params && { params: r.params }),
        ...(r.query && { querystring: r.query }),
        ...(r.body && { body: r.body }),
      },
      // a route is authenticated unless the contract says it is public
      onRequest: r.public ? undefined : authenticate,
      handler: async (req, reply) => {
        const who = sessions.get(req) ?? { userId: "", token: "" };
        const gone = new AbortController();
        reply.raw.once("close", () => gone.abort());
        const answer = await serve[name]({
          gone: gone.signal,
          params: req.params as never,
          body: req.body as never,
          query: req.query as never,
          ip: req.ip,
          port: req.socket.remotePort ?? 0,
          ...who,
        });
        return reply.code(r.status ?? 200).send(answer);
      },
    });
  }

  guardConnections(app.server as HttpsServer, limits, (line) => log("warning", line));

  // the relay's legs: upgrade requests never reach the JSON routes
  app.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const m = new RegExp(`^${RELAY_PATH}/([0-9a-f]{32})$`).exec(req.url ?? "");
    if (req.method !== "GET" || !m || req.headers.upgrade !== RELAY_PROTOCOL) {
      log("warning", `warning: ${esc(req.socket.remoteAddress ?? "")} upgrade ${esc(req.url ?? "")} -> 404`);
      return refuse(socket, 404, "no such upgrade");
    }
    service.authenticate(bearer(req)).then(
      (userId) => service.relay.join(m[1]!, userId, socket, head),
      () => refuse(socket, 401, "log in first"),
    );
  });
  // before the server waits for open requests: long polls answer at once, circuits end,
  // and every answer from then on closes its connection (a kept-alive one would hold
  // the server open until its timeout)
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    service.relay.close();
    service.signals.close();
  });
  app.addHook("onSend", async (_req, reply, payload) => {
    if (closing) reply.header("connection", "close");
    return payload;
  });

  return app;
}
