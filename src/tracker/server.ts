import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from "fastify";
import {
  MAX_BODY_BYTES,
  MAX_FILE_NAME_LENGTH,
  MAX_FILE_SIZE,
  MAX_PIECES,
  PIECE_SIZE,
  SHA1_LENGTH,
} from "../shared/constants.js";
import { ERRORS, GsError } from "../shared/errors.js";
import { parseHostPort } from "../shared/trackerInfo.js";
import type { TrackerService } from "./service.js";

/** Schemas: every route declares its body and params; unknown fields are refused, not dropped. */
// loose bound here; checkId in the service applies the id rule and answers INVALID_ID
const id = { type: "string", maxLength: 256 } as const;
const fileName = { type: "string", minLength: 1, maxLength: MAX_FILE_NAME_LENGTH } as const;
const password = { type: "string", minLength: 1, maxLength: 128 } as const;
const groupParams = { type: "object", required: ["groupId"], properties: { groupId: id } } as const;
const fileParams = {
  type: "object",
  required: ["groupId", "name"],
  properties: { groupId: id, name: fileName },
} as const;
const noBody = { type: "object", additionalProperties: false, maxProperties: 0 } as const;

export interface TrackerServerOptions {
  service: TrackerService;
  /** Called with a one-line warning for each refused request (the client's problem, not ours). */
  warn?: (line: string) => void;
}

interface Authed {
  userId: string;
  token: string;
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith("Bearer ") ? h.slice(7) : undefined;
}

export function buildTrackerServer({ service, warn = () => {} }: TrackerServerOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    // keep-alive connections from clients are idle between commands; bound them anyway
    keepAliveTimeout: 30_000,
    requestTimeout: 30_000,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
  });

  const auth = async (req: FastifyRequest): Promise<Authed> => {
    const token = bearer(req);
    return { userId: await service.authenticate(token), token: token! };
  };

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
      warn(`error: ${req.method} ${req.url}: ${err.stack ?? err.message}`);
    }
    const status = ERRORS[code].status;
    if (status < 500) warn(`warning: ${req.ip} ${req.method} ${req.url} -> ${status} ${code}: ${message}`);
    void reply.code(status).send({ error: { code, message } });
  });

  app.setNotFoundHandler((req, reply) => {
    warn(`warning: ${req.ip} ${req.method} ${req.url} -> 404 no such route`);
    void reply.code(404).send({ error: { code: "NO_ROUTE", message: `no route ${req.method} ${req.url}` } });
  });

  app.get("/v1/health", async () => ({ ok: true }));

  app.get("/v1/keys", async () => ({ publicKey: service.publicKeyPem }));

  app.post<{ Body: { userId: string; password: string } }>(
    "/v1/users",
    {
      schema: {
        body: {
          type: "object",
          required: ["userId", "password"],
          additionalProperties: false,
          properties: { userId: id, password },
        },
      },
    },
    async (req, reply) => {
      await service.createUser(req.body.userId, req.body.password, req.ip);
      return reply.code(201).send({ userId: req.body.userId });
    },
  );

  app.post<{ Body: { userId: string; password: string; peerAddr: string } }>(
    "/v1/sessions",
    {
      schema: {
        body: {
          type: "object",
          required: ["userId", "password", "peerAddr"],
          additionalProperties: false,
          properties: { userId: id, password, peerAddr: { type: "string", minLength: 3, maxLength: 64 } },
        },
      },
    },
    async (req) => {
      if (typeof parseHostPort(req.body.peerAddr) === "string") {
        throw new GsError("BAD_REQUEST", `peerAddr '${req.body.peerAddr}' is not IP:PORT`);
      }
      const token = await service.login(req.body.userId, req.body.password, req.body.peerAddr, req.ip);
      return { token, userId: req.body.userId };
    },
  );

  app.delete("/v1/sessions", async (req) => {
    const { token } = await auth(req);
    await service.logout(token);
    return { ok: true };
  });

  app.post("/v1/heartbeat", { schema: { body: noBody } }, async (req) => {
    const token = bearer(req);
    if (!token) throw new GsError("UNAUTHORIZED", "not logged in");
    await service.heartbeat(token);
    return { ok: true };
  });

  app.get("/v1/groups", async (req) => {
    const { userId } = await auth(req);
    return { groups: await service.listGroups(userId) };
  });

  app.post<{ Body: { groupId: string } }>(
    "/v1/groups",
    {
      schema: {
        body: {
          type: "object",
          required: ["groupId"],
          additionalProperties: false,
          properties: { groupId: id },
        },
      },
    },
    async (req, reply) => {
      const { userId } = await auth(req);
      await service.createGroup(userId, req.body.groupId);
      return reply.code(201).send({ groupId: req.body.groupId, owner: userId });
    },
  );

  app.post<{ Params: { groupId: string } }>(
    "/v1/groups/:groupId/requests",
    { schema: { params: groupParams, body: noBody } },
    async (req, reply) => {
      const { userId } = await auth(req);
      await service.joinGroup(userId, req.params.groupId);
      return reply.code(201).send({ ok: true });
    },
  );

  app.get<{ Params: { groupId: string } }>(
    "/v1/groups/:groupId/requests",
    { schema: { params: groupParams } },
    async (req) => {
      const { userId } = await auth(req);
      return { requests: await service.listRequests(userId, req.params.groupId) };
    },
  );

  app.post<{ Params: { groupId: string; userId: string } }>(
    "/v1/groups/:groupId/requests/:userId/accept",
    {
      schema: {
        params: { type: "object", required: ["groupId", "userId"], properties: { groupId: id, userId: id } },
        body: noBody,
      },
    },
    async (req) => {
      const { userId } = await auth(req);
      await service.acceptRequest(userId, req.params.groupId, req.params.userId);
      return { ok: true };
    },
  );

  app.post<{ Params: { groupId: string } }>(
    "/v1/groups/:groupId/leave",
    { schema: { params: groupParams, body: noBody } },
    async (req) => {
      const { userId } = await auth(req);
      return await service.leaveGroup(userId, req.params.groupId);
    },
  );

  app.get<{ Params: { groupId: string } }>(
    "/v1/groups/:groupId/files",
    { schema: { params: groupParams } },
    async (req) => {
      const { userId } = await auth(req);
      return { files: await service.listFiles(userId, req.params.groupId) };
    },
  );

  app.post<{
    Params: { groupId: string };
    Body: { name: string; size: number; sha1: string; pieces: string };
  }>(
    "/v1/groups/:groupId/files",
    {
      schema: {
        params: groupParams,
        body: {
          type: "object",
          required: ["name", "size", "sha1", "pieces"],
          additionalProperties: false,
          properties: {
            name: fileName,
            size: { type: "integer", minimum: 0, maximum: MAX_FILE_SIZE },
            sha1: { type: "string", pattern: "^[0-9a-f]{40}$" },
            // base64 of the concatenated 20-byte piece digests
            pieces: { type: "string", maxLength: Math.ceil((MAX_PIECES * SHA1_LENGTH) / 3) * 4 },
          },
        },
      },
    },
    async (req, reply) => {
      const { userId } = await auth(req);
      const { name, size, sha1 } = req.body;
      const pieces = Buffer.from(req.body.pieces, "base64");
      const count = Math.ceil(size / PIECE_SIZE);
      if (pieces.length !== count * SHA1_LENGTH) {
        throw new GsError(
          "BAD_REQUEST",
          `a ${size}-byte file has ${count} pieces: expected ${count * SHA1_LENGTH} bytes of hashes`,
        );
      }
      await service.upload(userId, req.params.groupId, { name, size, sha1, pieces });
      return reply.code(201).send({ ok: true });
    },
  );

  app.post<{ Params: { groupId: string; name: string }; Body: { complete: boolean } }>(
    "/v1/groups/:groupId/files/:name/shares",
    {
      schema: {
        params: fileParams,
        body: {
          type: "object",
          required: ["complete"],
          additionalProperties: false,
          properties: { complete: { type: "boolean" } },
        },
      },
    },
    async (req) => {
      const { userId } = await auth(req);
      await service.announce(userId, req.params.groupId, req.params.name, req.body.complete);
      return { ok: true };
    },
  );

  app.delete<{ Params: { groupId: string; name: string } }>(
    "/v1/groups/:groupId/files/:name/shares",
    { schema: { params: fileParams } },
    async (req) => {
      const { userId } = await auth(req);
      await service.stopShare(userId, req.params.groupId, req.params.name);
      return { ok: true };
    },
  );

  // The start of a download: the file's hashes, a ticket and the online sharers.
  app.post<{ Params: { groupId: string; name: string } }>(
    "/v1/groups/:groupId/files/:name/download",
    { schema: { params: fileParams, body: noBody } },
    async (req) => {
      const { userId } = await auth(req);
      const file = await service.getFile(userId, req.params.groupId, req.params.name);
      const grant = await service.grant(userId, req.params.groupId, file.name, file.sha1);
      return {
        file: { name: file.name, size: file.size, sha1: file.sha1, pieces: file.pieces.toString("base64") },
        ...grant,
      };
    },
  );

  // A download's refresh: a new ticket and peer list, without the hashes again.
  app.post<{ Params: { groupId: string; name: string } }>(
    "/v1/groups/:groupId/files/:name/peers",
    { schema: { params: fileParams, body: noBody } },
    async (req) => {
      const { userId } = await auth(req);
      const file = await service.getFile(userId, req.params.groupId, req.params.name);
      return await service.grant(userId, req.params.groupId, file.name, file.sha1);
    },
  );

  return app;
}
