/**
 * The one registry of error codes. The tracker answers errors as
 * `{ "error": { "code", "message" } }` with the code's HTTP status; the client
 * prints `error: <message>` and, where there is one, what to do about it.
 * Tests assert on `code`, never on message text.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, hint: "see help for the syntax" },
  INVALID_ID: { status: 400, hint: "ids are 1-32 characters: letters, digits, '_', '-' or '.'" },
  INVALID_FILE_NAME: { status: 400, hint: "rename the file" },
  BODY_TOO_LARGE: { status: 413, hint: "send a smaller request" },
  UNAUTHORIZED: { status: 401, hint: "log in first" },
  WRONG_PASSWORD: { status: 401, hint: "check the user id and password" },
  DEVICE_REFUSED: {
    status: 401,
    hint: "the remembered login was revoked or is not this user's: log in with the password",
  },
  DEVICE_NOT_FOUND: { status: 404, hint: "see the list of your remembered devices (GET /v1/devices)" },
  TOO_MANY_ATTEMPTS: { status: 429, hint: "wait, then try again" },
  RATE_LIMITED: { status: 429, hint: "wait, then try again" },
  BUSY: { status: 503, hint: "the tracker is under load: try again in a few seconds" },
  QUOTA_EXCEEDED: { status: 403, hint: "leave groups you no longer need (see Limits in the README)" },
  USER_EXISTS: { status: 409, hint: "choose another user id, or log in" },
  USER_NOT_FOUND: { status: 404, hint: "create it with create_user" },
  GROUP_EXISTS: { status: 409, hint: "choose another group id, or join_group it" },
  GROUP_NOT_FOUND: { status: 404, hint: "see list_groups" },
  NOT_OWNER: { status: 403, hint: "ask the group's owner" },
  NOT_MEMBER: { status: 403, hint: "join_group first; the owner must accept" },
  ALREADY_MEMBER: { status: 409, hint: "see list_groups" },
  REQUEST_EXISTS: { status: 409, hint: "the owner must accept it" },
  REQUEST_NOT_FOUND: { status: 404, hint: "see list_requests" },
  MEMBER_NOT_FOUND: { status: 404, hint: "check the user id: only members can be removed" },
  CANNOT_REMOVE_OWNER: { status: 409, hint: "an owner leaves with leave_group instead" },
  FILE_EXISTS: { status: 409, hint: "rename your file" },
  FILE_NOT_FOUND: { status: 404, hint: "see list_files" },
  NOT_SHARING: { status: 404, hint: "see show_shares" },
  PEER_ADDRESS_REFUSED: {
    status: 403,
    hint: "start the client on the address the tracker sees, or on its LAN address (see Members behind home routers in the README)",
  },
  TRACKER_UNAVAILABLE: { status: 503, hint: "start a tracker, or check tracker_info.txt" },
  BAD_TRACKER_ANSWER: {
    status: 502,
    hint: "that tracker is broken or not a groupshare tracker: check tracker_info.txt",
  },
  TRACKER_KEY_MISMATCH: {
    status: 502,
    hint: "see 'Trusting trackers' in the README",
  },
  DOWNLOAD_STALLED: {
    status: 503,
    hint: "no sharer of the missing pieces was online: download again when one is",
  },
  DISK_FULL: { status: 507, hint: "free some space, then download again" },
  DOWNLOAD_FAILED: { status: 500, hint: "the message says why; download again to retry" },
  NO_ROUTE: { status: 404, hint: "see the API routes in src/shared/api.ts" },
  HOST_NOT_ALLOWED: {
    status: 403,
    hint: "open the address the client printed, or allow the name with --web-allow-host",
  },
  CROSS_SITE: { status: 403, hint: "open the web UI from the link the client printed" },
  METHOD_NOT_ALLOWED: { status: 405, hint: "see the web API's routes in the README" },
  NOT_JSON: { status: 415, hint: "send the body as application/json" },
  INTERNAL: { status: 500, hint: "see the tracker's log" },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class GsError extends Error {
  override readonly name = "GsError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
  get status(): number {
    return ERRORS[this.code].status;
  }
  get hint(): string {
    return ERRORS[this.code].hint;
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERRORS, code);
}
