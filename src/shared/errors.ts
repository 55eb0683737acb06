/**
 * The one registry of error codes. The tracker answers errors as
 * `{ "error": { "code", "message" } }` with the code's HTTP status; the client
 * prints `error: <message>` and, where there is one, what to do about it.
 * Tests assert on `code`, never on message text.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, hint: "check the command's arguments (see help)" },
  INVALID_ID: { status: 400, hint: "ids are 1-32 characters: letters, digits, '_', '-' or '.'" },
  INVALID_FILE_NAME: {
    status: 400,
    hint: "rename the file: no '/', '\\', NUL or control characters, not '.' or '..'",
  },
  BODY_TOO_LARGE: { status: 413, hint: "the request is larger than the tracker accepts" },
  UNAUTHORIZED: { status: 401, hint: "log in first" },
  WRONG_PASSWORD: { status: 401, hint: "check the user id and password" },
  TOO_MANY_ATTEMPTS: { status: 429, hint: "wait a little before trying again" },
  USER_EXISTS: { status: 409, hint: "choose another user id, or log in" },
  USER_NOT_FOUND: { status: 404, hint: "check the user id, or create it with create_user" },
  GROUP_EXISTS: { status: 409, hint: "choose another group id, or join_group it" },
  GROUP_NOT_FOUND: { status: 404, hint: "check the group id with list_groups" },
  NOT_OWNER: { status: 403, hint: "only the group's owner can do this" },
  NOT_MEMBER: { status: 403, hint: "join the group first (join_group, then the owner accepts)" },
  ALREADY_MEMBER: { status: 409, hint: "see list_groups" },
  REQUEST_EXISTS: { status: 409, hint: "the owner must accept it (accept_request)" },
  REQUEST_NOT_FOUND: { status: 404, hint: "that user has no pending request (see list_requests)" },
  FILE_EXISTS: { status: 409, hint: "a different file has that name in the group; rename yours" },
  FILE_NOT_FOUND: { status: 404, hint: "check the name with list_files" },
  NOT_SHARING: { status: 404, hint: "you are not sharing that file" },
  TRACKER_UNAVAILABLE: { status: 503, hint: "start a tracker, or check tracker_info.txt" },
  INTERNAL: { status: 500, hint: "the tracker failed; see its log" },
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
