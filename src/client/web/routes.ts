import { GsError } from "../../shared/errors.js";

export type WebMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** What a route's handler gets: the checked request. The token was checked before. */
export interface WebRequest {
  /** The path's `:name` segments, URL-decoded. */
  params: Record<string, string>;
  /** The query string (a name given twice is refused before the handler runs). */
  query: Record<string, string>;
  /** The parsed JSON body; undefined when there is none (GET, or an empty body). */
  body: unknown;
  /** Aborted when the request times out or the caller goes away. */
  signal: AbortSignal;
}

/**
 * One API route: its answer is the handler's value as JSON. A handler throws GsError
 * for a refusal ({"error":{"code","message"}} with the code's status); anything else
 * thrown is a bug, answered 500 INTERNAL and logged.
 */
export interface WebRoute {
  method: WebMethod;
  /** Under /api/ (the token-checked part), e.g. `/api/v1/downloads/:id`. */
  path: string;
  handler: (req: WebRequest) => Promise<unknown>;
  /** The success status (200 unless given). */
  status?: number;
}

export type RouteTable = readonly WebRoute[];

/** Every route lives here: the server checks the token on this whole prefix. */
export const API_PREFIX = "/api/";

interface Compiled {
  route: WebRoute;
  segments: string[];
}

export type Match =
  | { route: WebRoute; params: Record<string, string> }
  | { route: undefined; methods: WebMethod[] };

/** The routes, checked once: paths under API_PREFIX, no two alike, none of the server's own. */
export class Router {
  readonly #routes: Compiled[];

  /** `reserved`: the server's own paths, which no route may take. */
  constructor(table: RouteTable, reserved: readonly string[]) {
    const seen = new Set<string>();
    this.#routes = table.map((route) => {
      if (!route.path.startsWith(API_PREFIX) || route.path.includes("?"))
        throw new Error(`web route ${route.path}: every route is under ${API_PREFIX}, with no query`);
      if (reserved.includes(route.path)) throw new Error(`web route ${route.path} is the server's own`);
      const key = `${route.method} ${route.path.replace(/:[^/]+/g, ":")}`;
      if (seen.has(key)) throw new Error(`web route ${route.method} ${route.path} is declared twice`);
      seen.add(key);
      return { route, segments: route.path.split("/") };
    });
  }

  /** The route for `method` and `path` (not decoded), or the methods the path has if none. */
  match(method: string, path: string): Match {
    const parts = path.split("/");
    const methods: WebMethod[] = [];
    for (const c of this.#routes) {
      const params = matchSegments(c.segments, parts);
      if (!params) continue;
      if (c.route.method === method) return { route: c.route, params };
      methods.push(c.route.method);
    }
    return { route: undefined, methods };
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, p] of pattern.entries()) {
    const part = parts[i]!;
    if (p.startsWith(":")) {
      if (part === "") return undefined;
      params[p.slice(1)] = decodeSegment(part);
    } else if (p !== part) return undefined;
  }
  return params;
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new GsError("BAD_REQUEST", "the path has a malformed %-escape");
  }
}

/** The query string as one value per name; a name given twice is refused. */
export function parseQuery(search: string): Record<string, string> {
  // no prototype: a name like __proto__ is just a name
  const query: Record<string, string> = Object.create(null);
  for (const [k, v] of new URLSearchParams(search)) {
    if (Object.hasOwn(query, k)) throw new GsError("BAD_REQUEST", `the query names '${k}' twice`);
    query[k] = v;
  }
  return query;
}
