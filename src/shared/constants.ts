/** Every file is cut into pieces of this size; the last piece may be shorter (DESIGN.md). */
export const PIECE_SIZE = 512 * 1024;

/** Length of a SHA1 digest in bytes. */
export const SHA1_LENGTH = 20;

/**
 * Largest peer-wire frame: one whole piece plus its `piece` header, with slack.
 * A larger length prefix is refused before a byte of the body is buffered.
 */
export const MAX_FRAME_LENGTH = PIECE_SIZE + 64;

/** Largest ticket carried in a handshake (a signed JSON payload is ~250 bytes). */
export const MAX_TICKET_LENGTH = 2048;

/** Peer-wire protocol version carried in every handshake. */
export const WIRE_VERSION = 1;

/** Ids: 1..32 characters from this set (documented in `help`). */
export const ID_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;
/** What may start an id: list_groups finds groups by it. */
export const ID_PREFIX_PATTERN = /^[A-Za-z0-9_.-]{0,32}$/;
export const ID_RULE = "1-32 characters: letters, digits, '_', '-' or '.'";

/**
 * A remembered device (a login's `remember`): its id, 128 random bits in hex, and its
 * secret, 256 random bits in base64url. The tracker keeps only the secret's SHA-256.
 */
export const DEVICE_ID_PATTERN = "^[0-9a-f]{32}$";
export const DEVICE_SECRET_PATTERN = "^[A-Za-z0-9_-]{43}$";
export const MAX_DEVICE_NAME_LENGTH = 64;
/**
 * Remembered devices one user may have at once: a minting loop cannot grow the store,
 * and the list a user reads to revoke a lost device stays short.
 */
export const MAX_DEVICES_PER_USER = 20;

/** Passwords: 1..128 characters, anything printable but they may not be empty. */
export const MAX_PASSWORD_LENGTH = 128;

/**
 * Groups in one list_groups answer: the asker's own first, then the others, with a
 * count of all that match; a prefix finds any other. 100 keeps the answer near 10 KB
 * however many groups the tracker holds.
 */
export const LIST_GROUPS_LIMIT = 100;

/** File names within a group (see validateFileName). */
export const MAX_FILE_NAME_LENGTH = 255;

/**
 * Largest file the tracker registers: the piece list travels in one JSON body
 * (27 base64 characters a piece), and this keeps that body under MAX_BODY_BYTES.
 */
export const MAX_PIECES = 131_072; // 64 GiB
export const MAX_FILE_SIZE = MAX_PIECES * PIECE_SIZE;

/** Tracker HTTP body bound: the piece list of the largest file, with slack. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** A peer not heard from (heartbeat) within this many ms is offline and never handed out. */
export const PEER_TTL_MS = 30_000;
/** Clients send a heartbeat this often (a third of the TTL, so one lost beat is harmless). */
export const HEARTBEAT_INTERVAL_MS = 10_000;

/**
 * A session with no heartbeat for this long ends, and the tracker deletes it. 90
 * missed beats: a laptop that sleeps through a meeting logs in again; a client
 * whose tracker was down for a restart keeps its session.
 */
export const SESSION_IDLE_MS = 15 * 60_000;

/**
 * Download tickets are short-lived: a sharer checks the ticket's expiry on every
 * request, and a downloader hands its open connections a fresh one with each
 * peer-list refresh (TICKET_REFRESH_MS). A member who leaves or is removed gets no
 * new ticket, so no connection of theirs outlives this bound.
 */
export const TICKET_TTL_MS = 10_000;
/** Downloaders renew their ticket (and peer list) this often: a third of its life. */
export const TICKET_REFRESH_MS = 3_000;

/** Client → tracker request timeout before failing over to the next tracker. */
export const TRACKER_TIMEOUT_MS = 3_000;
/**
 * The same for the two requests that hash a password (create_user, login). The hash
 * costs about 160 ms of CPU and waits behind at most a few others (the tracker answers
 * BUSY at once beyond its bounded queue), so a slow or busy tracker host is waited for
 * rather than failed over: a create_user that timed out on one tracker and was repeated
 * on the next answered USER_EXISTS for the user's own account.
 */
export const HASHING_TIMEOUT_MS = 10_000;

/**
 * A client's signal poll waits this long at the tracker for something to do (dial a
 * downloader back, meet one at a relay) before it is answered empty and asked again.
 */
export const SIGNAL_WAIT_MS = 25_000;
/** A signal not read within this time is dropped: the downloader that asked has moved on. */
export const SIGNAL_TTL_MS = 10_000;
