// The groupshare web UI: one page over the client's JSON API (/api/v1). No build step,
// no framework. Every value from the API reaches the page through textContent, never as
// markup: file names and user ids come from other members.

const TOKEN_KEY = "groupshare-token";
const $ = (id) => document.getElementById(id);

/** The token from the link the client printed (#token=…), kept for this tab only. */
function takeToken() {
  const m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, m[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const token = takeToken();

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError("CLIENT_UNREACHABLE", "the groupshare client does not answer: is it still running?");
  }
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = json.error ?? {};
    throw new ApiError(e.code ?? "INTERNAL", e.message ?? `the client answered ${res.status}`);
  }
  return json;
}

const seg = (s) => encodeURIComponent(s);

// ---- formatting -------------------------------------------------------------------

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
function bytes(n) {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[u]}`;
}
function rate(bps) {
  return `${bytes(Math.round(bps))}/s`;
}
function eta(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** An element with text and attributes; children appended in order. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

// ---- notices ----------------------------------------------------------------------

function notice(text, kind = "info") {
  const n = el("div", { class: `notice ${kind}` }, el("span", { text }));
  const close = el("button", {
    type: "button",
    class: "ghost small",
    "aria-label": "Dismiss notice",
    text: "×",
  });
  close.addEventListener("click", () => n.remove());
  n.append(close);
  $("notices").append(n);
  while ($("notices").children.length > 5) $("notices").firstElementChild.remove();
  if (kind !== "error") setTimeout(() => n.remove(), 8000);
}

/** Runs an action from a control: its error becomes a notice, and the control is busy meanwhile. */
async function act(control, fn) {
  if (control) control.setAttribute("aria-busy", "true");
  if (control) control.disabled = true;
  try {
    return await fn();
  } catch (err) {
    notice(`${err.message}${err.code ? ` (${err.code})` : ""}`, "error");
    return undefined;
  } finally {
    if (control) {
      control.disabled = false;
      control.removeAttribute("aria-busy");
    }
  }
}

// ---- state ------------------------------------------------------------------------

const state = {
  session: undefined,
  groups: [],
  selected: undefined,
  downloads: new Map(),
  shares: [],
  downloadFile: undefined,
};
const keyOf = (d) => `${d.groupId}\u0000${d.name}`;

// ---- session ----------------------------------------------------------------------

function showSession(s) {
  state.session = s;
  const inside = s.loggedIn;
  $("signed-out").hidden = inside;
  $("signed-in").hidden = !inside;
  $("who").hidden = !inside;
  if (inside) {
    $("who-user").textContent = s.userId;
    $("who-peer").textContent = `serving on ${s.peerAddr}`;
    document.title = `groupshare: ${s.userId}`;
    refreshAll();
  } else {
    document.title = "groupshare";
    state.downloads.clear();
    state.shares = [];
    state.selected = undefined;
    $("group-card").hidden = true;
    $("login-user").focus();
  }
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const button = ev.submitter;
  act(button, async () => {
    const s = await api("POST", "/session", {
      userId: $("login-user").value.trim(),
      password: $("login-pass").value,
      remember: $("login-remember").checked,
    });
    $("login-pass").value = "";
    showSession(s);
    notice(`Logged in as ${s.userId}`);
  });
});

$("signup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const button = ev.submitter;
  act(button, async () => {
    const userId = $("signup-user").value.trim();
    await api("POST", "/users", { userId, password: $("signup-pass").value });
    $("signup-pass").value = "";
    $("login-user").value = userId;
    notice(`Account ${userId} created: log in with it`);
    $("login-pass").focus();
  });
});

$("logout").addEventListener("click", (ev) =>
  act(ev.currentTarget, async () => {
    await api("DELETE", "/session");
    showSession({ ...state.session, loggedIn: false, userId: null });
    notice("Logged out: sharing stopped until you log in again");
  }),
);

// ---- tabs -------------------------------------------------------------------------

const TABS = ["groups", "downloads", "shares"];
function showTab(name) {
  for (const t of TABS) {
    const on = t === name;
    $(`tab-${t}`).setAttribute("aria-selected", String(on));
    $(`tab-${t}`).tabIndex = on ? 0 : -1;
    $(`view-${t}`).hidden = !on;
  }
}
for (const t of TABS) {
  $(`tab-${t}`).addEventListener("click", () => showTab(t));
  $(`tab-${t}`).addEventListener("keydown", (ev) => {
    const i = TABS.indexOf(t);
    const next = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
    if (!next) return;
    const to = TABS[(i + next + TABS.length) % TABS.length];
    showTab(to);
    $(`tab-${to}`).focus();
  });
}

// ---- groups -----------------------------------------------------------------------

const ROLE_TEXT = { owner: "owner", member: "member", pending: "requested", none: "—" };

async function refreshGroups() {
  const prefix = $("group-search").value.trim();
  const r = await api("GET", `/groups${prefix ? `?prefix=${seg(prefix)}` : ""}`);
  state.groups = r.groups;
  renderGroups(r.total);
}

function renderGroups(total) {
  renderLimitScopes();
  const body = $("groups-body");
  body.replaceChildren();
  for (const g of state.groups) {
    const actions = el("td", { class: "actions" });
    if (g.role === "owner" || g.role === "member") {
      actions.append(
        el("button", {
          type: "button",
          text: "Open",
          "aria-label": `Open ${g.groupId}`,
          onclick: () => openGroup(g.groupId),
        }),
        el("button", {
          type: "button",
          class: "ghost",
          text: "Leave",
          "aria-label": `Leave ${g.groupId}`,
          onclick: (ev) => leaveGroup(ev.currentTarget, g.groupId),
        }),
      );
    } else if (g.role === "pending") {
      actions.append(
        el("button", {
          type: "button",
          class: "ghost",
          text: "Withdraw",
          "aria-label": `Withdraw request to join ${g.groupId}`,
          onclick: (ev) => leaveGroup(ev.currentTarget, g.groupId),
        }),
      );
    } else {
      actions.append(
        el("button", {
          type: "button",
          text: "Join",
          "aria-label": `Join ${g.groupId}`,
          onclick: (ev) =>
            act(ev.currentTarget, async () => {
              await api("POST", `/groups/${seg(g.groupId)}/join`, {});
              notice(`Asked to join ${g.groupId}: its owner must accept`);
              await refreshGroups();
            }),
        }),
      );
    }
    const row = el(
      "tr",
      { class: state.selected === g.groupId ? "selected" : undefined },
      el("th", { scope: "row", text: g.groupId }),
      el("td", { text: g.owner }),
      el("td", { text: String(g.members) }),
      el("td", {}, el("span", { class: `pill ${g.role}`, text: ROLE_TEXT[g.role] ?? g.role })),
      actions,
    );
    body.append(row);
  }
  if (state.groups.length === 0) {
    body.append(
      el("tr", {}, el("td", { colspan: "5", class: "muted", text: "No groups yet: create one above." })),
    );
  }
  const more = $("groups-more");
  more.hidden = total <= state.groups.length;
  more.textContent = `${state.groups.length} of ${total} groups shown: search to find the rest.`;
}

let searchTimer;
$("group-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => act(undefined, refreshGroups), 200);
});

$("create-group-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  act(ev.submitter, async () => {
    const groupId = $("create-group-id").value.trim();
    await api("POST", "/groups", { groupId });
    $("create-group-id").value = "";
    notice(`Group ${groupId} created: you own it`);
    await refreshGroups();
    await openGroup(groupId);
  });
});

function leaveGroup(button, groupId) {
  return act(button, async () => {
    const r = await api("POST", `/groups/${seg(groupId)}/leave`, {});
    if (r.withdrawn) notice(`Withdrew your request to join ${groupId}`);
    else if (r.deleted) notice(`Left ${groupId}: it had no other member and is deleted`);
    else notice(`Left ${groupId}${r.newOwner ? `: ${r.newOwner} owns it now` : ""}`);
    if (state.selected === groupId) {
      state.selected = undefined;
      $("group-card").hidden = true;
    }
    await refreshGroups();
  });
}

async function openGroup(groupId) {
  state.selected = groupId;
  const g = state.groups.find((x) => x.groupId === groupId);
  $("group-title").textContent = groupId;
  $("group-role").textContent = g ? `you are ${g.role === "owner" ? "the owner" : "a member"}` : "";
  $("group-card").hidden = false;
  $("download-form").hidden = true;
  renderGroups(state.groups.length);
  await act(undefined, () => refreshGroup());
}

async function refreshGroup() {
  const groupId = state.selected;
  if (!groupId) return;
  const g = state.groups.find((x) => x.groupId === groupId);
  const { files } = await api("GET", `/groups/${seg(groupId)}/files`);
  if (state.selected !== groupId) return;
  renderFiles(files);
  const owner = g?.role === "owner";
  $("owner-section").hidden = !owner;
  if (owner) {
    const [{ requests }, { members }] = await Promise.all([
      api("GET", `/groups/${seg(groupId)}/requests`),
      api("GET", `/groups/${seg(groupId)}/members`),
    ]);
    if (state.selected !== groupId) return;
    renderRequests(groupId, requests);
    renderMembers(groupId, members, g?.owner);
  }
}

function renderFiles(files) {
  const body = $("files-body");
  body.replaceChildren();
  for (const f of files) {
    const online =
      f.sharersOnline === 0
        ? el("span", { class: "muted", text: "none online" })
        : el("span", { text: `${f.sharersOnline} (${f.seedersOnline} complete)` });
    body.append(
      el(
        "tr",
        {},
        el("th", { scope: "row", class: "name", text: f.name, title: `SHA1 ${f.sha1}` }),
        el("td", { text: bytes(f.size) }),
        el("td", {}, online),
        el(
          "td",
          { class: "actions" },
          el("button", {
            type: "button",
            class: "primary",
            text: "Download",
            "aria-label": `Download ${f.name}`,
            disabled: f.sharersOnline === 0 ? true : undefined,
            onclick: () => askDestination(f),
          }),
        ),
      ),
    );
  }
  if (files.length === 0) {
    body.append(
      el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No files yet: share one below." })),
    );
  }
}

function askDestination(f) {
  state.downloadFile = { groupId: state.selected, name: f.name };
  $("download-title").textContent = `Download ${f.name} (${bytes(f.size)})`;
  $("download-form").hidden = false;
  $("download-dest").focus();
}

$("download-cancel-form").addEventListener("click", () => {
  $("download-form").hidden = true;
});

$("download-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const what = state.downloadFile;
  if (!what) return;
  act(ev.submitter, async () => {
    const d = await api("POST", "/downloads", { ...what, destination: $("download-dest").value.trim() });
    $("download-form").hidden = true;
    await refreshDownloads();
    notice(`Downloading ${d.name} to ${d.target}`);
  });
});

$("share-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const groupId = state.selected;
  act(ev.submitter, async () => {
    const s = await api("POST", "/shares", { path: $("share-path").value.trim(), groupId });
    $("share-path").value = "";
    notice(`Sharing ${s.name} in ${groupId}`);
    await Promise.all([refreshGroup(), refreshShares()]);
  });
});

function renderRequests(groupId, requests) {
  const list = $("requests-list");
  list.replaceChildren();
  for (const r of requests) {
    list.append(
      el(
        "li",
        {},
        el("span", { class: "person", text: r.userId }),
        el("span", { class: "muted", text: new Date(r.requestedAt).toLocaleString() }),
        el("button", {
          type: "button",
          class: "primary",
          text: "Accept",
          "aria-label": `Accept ${r.userId}`,
          onclick: (ev) =>
            act(ev.currentTarget, async () => {
              await api("POST", `/groups/${seg(groupId)}/requests/${seg(r.userId)}/accept`, {});
              notice(`${r.userId} is now a member of ${groupId}`);
              await Promise.all([refreshGroup(), refreshGroups()]);
            }),
        }),
        el("button", {
          type: "button",
          class: "ghost",
          text: "Reject",
          "aria-label": `Reject ${r.userId}`,
          onclick: (ev) =>
            act(ev.currentTarget, async () => {
              await api("POST", `/groups/${seg(groupId)}/requests/${seg(r.userId)}/reject`, {});
              notice(`Rejected ${r.userId}'s request`);
              await refreshGroup();
            }),
        }),
      ),
    );
  }
  if (requests.length === 0) list.append(el("li", { class: "muted", text: "No pending requests." }));
}

function renderMembers(groupId, members, owner) {
  const list = $("members-list");
  list.replaceChildren();
  for (const m of members) {
    const me = m.userId === state.session?.userId;
    const role = m.userId === owner ? "owner" : "member";
    list.append(
      el(
        "li",
        {},
        el("span", { class: "person", text: m.userId }),
        el("span", { class: `pill ${role}`, text: role }),
        me
          ? el("span", { class: "muted", text: "you" })
          : el("button", {
              type: "button",
              class: "ghost danger",
              text: "Remove",
              "aria-label": `Remove ${m.userId}`,
              onclick: (ev) =>
                act(ev.currentTarget, async () => {
                  if (!confirm(`Remove ${m.userId} from ${groupId}? Their shares in it end at once.`)) return;
                  await api("DELETE", `/groups/${seg(groupId)}/members/${seg(m.userId)}`);
                  notice(`Removed ${m.userId} from ${groupId}`);
                  await Promise.all([refreshGroup(), refreshGroups()]);
                }),
            }),
      ),
    );
  }
}

// ---- path completion --------------------------------------------------------------

function completePaths(input, listId, dirsOnly) {
  let timer;
  let asked = "";
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const prefix = input.value;
      if (prefix === asked || prefix === "") return;
      asked = prefix;
      try {
        const { entries } = await api("GET", `/paths?prefix=${seg(prefix)}`);
        const list = $(listId);
        list.replaceChildren(
          ...entries
            .filter((e) => !dirsOnly || e.dir)
            .slice(0, 50)
            .map((e) => el("option", { value: e.path })),
        );
      } catch {
        // completion is a help, not a step: a failure leaves the field as typed
      }
    }, 150);
  });
}
completePaths($("download-dest"), "download-dest-list", true);
completePaths($("share-path"), "share-path-list", false);

// ---- downloads --------------------------------------------------------------------

const PHASE_TEXT = {
  starting: "starting",
  downloading: "downloading",
  waiting: "waiting for sharers",
  verifying: "verifying",
  complete: "complete",
  failed: "failed",
  stopped: "stopped",
  paused: "paused",
  queued: "queued",
};

async function refreshDownloads() {
  const { downloads } = await api("GET", "/downloads");
  state.downloads = new Map(downloads.map((d) => [keyOf(d), d]));
  renderDownloads();
}

function renderDownloads() {
  renderLimitScopes();
  const list = $("downloads-list");
  const all = [...state.downloads.values()];
  $("downloads-empty").hidden = all.length > 0;
  const active = all.filter((d) => !["complete", "failed", "stopped"].includes(d.state)).length;
  $("downloads-count").textContent = active > 0 ? String(active) : "";
  list.replaceChildren(...all.map(downloadItem));
}

function downloadItem(d) {
  const done = d.state === "complete";
  const label = `${d.name} in ${d.groupId}`;
  const head = el(
    "div",
    { class: "row" },
    el("h3", { class: "name", text: d.name }),
    el("span", { class: "pill", text: d.groupId }),
    el("span", { class: `pill state ${d.state}`, text: PHASE_TEXT[d.state] ?? d.state }),
  );
  const bar = el("progress", {
    max: "100",
    value: String(Math.floor(d.percent)),
    "aria-label": `Progress of ${label}`,
  });
  const figures = el(
    "p",
    { class: "figures" },
    el("span", { text: `${Math.floor(d.percent)}%` }),
    el("span", { text: `${bytes(d.bytesDone)} of ${bytes(d.size)}` }),
  );
  if (!done && d.state !== "failed") {
    figures.append(
      el("span", { text: rate(d.speedBps ?? 0) }),
      el("span", { text: `ETA ${eta(d.etaSeconds)}` }),
      el("span", { text: `${d.peers?.length ?? 0} peer${d.peers?.length === 1 ? "" : "s"}` }),
    );
  }
  figures.append(el("span", { text: totalsText(d) }));
  const item = el("li", { class: `transfer ${d.state}`, "aria-label": label }, head, bar, figures);
  if (done) item.append(el("p", { class: "muted", text: `Saved to ${d.target}` }));
  else item.append(el("p", { class: "muted", text: `To ${d.target}` }));
  if (d.error) item.append(el("p", { class: "error", role: "alert", text: d.error.message }));
  const peers = d.peers ?? [];
  if (peers.length > 0) {
    const table = el(
      "table",
      { class: "list compact", "aria-label": `Peers of ${label}` },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", text: "Peer" }),
          el("th", { scope: "col", text: "Path" }),
          el("th", { scope: "col", text: "Gave" }),
        ),
      ),
      el(
        "tbody",
        {},
        ...peers.map((p) =>
          el(
            "tr",
            {},
            el("td", { text: `${p.userId} (${p.addr})` }),
            el(
              "td",
              {},
              el("span", { class: `pill path ${p.path ?? "connecting"}`, text: p.path ?? "connecting" }),
            ),
            el("td", { text: bytes(p.bytes) }),
          ),
        ),
      ),
    );
    item.append(table);
  }
  if (!done && d.state !== "failed") {
    item.append(
      el(
        "div",
        { class: "buttons" },
        pauseButton(d),
        el("button", {
          type: "button",
          class: "ghost",
          text: "Limit",
          "aria-label": `Limit download of ${d.name}`,
          onclick: () => limitDownload(d),
        }),
        el("button", {
          type: "button",
          class: "ghost danger",
          text: "Cancel",
          "aria-label": `Cancel download of ${d.name}`,
          onclick: (ev) =>
            act(ev.currentTarget, async () => {
              if (!confirm(`Cancel the download of ${d.name}? Its partial file is deleted.`)) return;
              await api("DELETE", `/downloads/${seg(d.groupId)}/${seg(d.name)}`);
              state.downloads.delete(keyOf(d));
              renderDownloads();
              notice(`Cancelled the download of ${d.name}`);
            }),
        }),
      ),
    );
  }
  return item;
}

/** Pause for a download that fetches or waits; Resume for a paused one. */
function pauseButton(d) {
  const paused = d.state === "paused";
  const verb = paused ? "Resume" : "Pause";
  return el("button", {
    type: "button",
    class: "ghost",
    text: verb,
    "aria-label": `${verb} download of ${d.name}`,
    onclick: (ev) =>
      act(ev.currentTarget, async () => {
        const view = await api(
          "POST",
          `/downloads/${seg(d.groupId)}/${seg(d.name)}/${paused ? "resume" : "pause"}`,
        );
        state.downloads.set(keyOf(view), view);
        renderDownloads();
      }),
  });
}

/** Lifetime totals: "Up 1.0 MiB · Down 2.0 MiB · ratio 0.50". */
function totalsText(t) {
  const ratio = t.ratio == null ? "—" : t.ratio.toFixed(2);
  return `Up ${bytes(t.uploadedBytes ?? 0)} · Down ${bytes(t.downloadedBytes ?? 0)} · ratio ${ratio}`;
}

// ---- shares -----------------------------------------------------------------------

async function refreshShares() {
  const { shares } = await api("GET", "/shares");
  state.shares = shares;
  renderShares();
}

function renderShares() {
  const shares = state.shares;
  $("shares-empty").hidden = shares.length > 0;
  $("shares-table").hidden = shares.length === 0;
  $("shares-count").textContent = shares.length > 0 ? String(shares.length) : "";
  $("shares-body").replaceChildren(
    ...shares.map((s) => {
      const serving = Object.entries(s.serving ?? {})
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${n} ${k}`)
        .join(", ");
      return el(
        "tr",
        {},
        el(
          "th",
          { scope: "row", class: "name" },
          el("span", { text: s.name }),
          el("small", { class: "muted", text: s.path }),
        ),
        el("td", { text: s.groupId }),
        el("td", { text: `${s.piecesHave}/${s.pieceCount}` }),
        el("td", { text: bytes(s.servedBytes) }, el("small", { class: "muted", text: totalsText(s) })),
        el("td", { text: serving || "—" }),
        el(
          "td",
          { class: "actions" },
          el("button", {
            type: "button",
            class: "ghost danger",
            text: "Stop sharing",
            "aria-label": `Stop sharing ${s.name} in ${s.groupId}`,
            onclick: (ev) =>
              act(ev.currentTarget, async () => {
                await api("DELETE", `/shares/${seg(s.groupId)}/${seg(s.name)}`);
                notice(`Stopped sharing ${s.name} in ${s.groupId}`);
                await refreshShares();
              }),
          }),
        ),
      );
    }),
  );
}

// ---- live events ------------------------------------------------------------------

const HANDLERS = {
  "logged-in": (e) => {
    if (!state.session?.loggedIn || state.session.userId !== e.userId)
      showSession({ ...state.session, loggedIn: true, userId: e.userId });
  },
  "logged-out": (e) => {
    if (!state.session?.loggedIn) return;
    showSession({ ...state.session, loggedIn: false, userId: null });
    if (e.reason === "session-ended")
      notice("Your session ended (logged in elsewhere?): logged out", "warning");
  },
  "download-progress": ({ download }) => {
    state.downloads.set(keyOf(download), download);
    renderDownloads();
  },
  "download-complete": ({ download }) => {
    state.downloads.set(keyOf(download), download);
    renderDownloads();
    notice(`Download complete: ${download.name}, saved to ${download.target}`, "success");
    refreshShares().catch(() => {});
  },
  "download-failed": ({ download, error }) => {
    state.downloads.set(keyOf(download), { ...download, error: download.error ?? error });
    renderDownloads();
    notice(`Download of ${download.name} failed: ${error?.message ?? "see Downloads"}`, "error");
  },
  "download-warning": (e) => notice(e.text ?? `A warning about ${e.download?.name}`, "warning"),
  warning: (e) => notice(e.text ?? e.warning?.kind ?? "warning", "warning"),
  "join-request": ({ request }) => {
    notice(`${request.userId} asks to join ${request.groupId}`);
    if (state.selected === request.groupId) refreshGroup().catch(() => {});
  },
  "request-accepted": ({ groupId }) => {
    notice(`You are now a member of ${groupId}`, "success");
    refreshGroups().catch(() => {});
  },
};

/** The event stream, read with fetch (EventSource cannot send the token); reconnects with a growing pause. */
async function listen() {
  let pause = 1000;
  for (;;) {
    try {
      const res = await fetch("/api/v1/events", {
        headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
        cache: "no-store",
      });
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      pause = 1000;
      // a reconnection may have missed news: read the whole picture again
      if (state.session?.loggedIn) refreshAll();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end = buf.indexOf("\n\n");
        while (end >= 0) {
          dispatch(buf.slice(0, end));
          buf = buf.slice(end + 2);
          end = buf.indexOf("\n\n");
        }
      }
    } catch {
      // the client restarted or went away: try again
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 15000);
  }
}

function dispatch(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (data.length === 0) return;
  const handler = HANDLERS[type];
  if (!handler) return;
  try {
    handler(JSON.parse(data.join("\n")));
  } catch {
    // one malformed event is skipped, not the stream
  }
}

// shares change by themselves (bytes served, peers served): read again while their tab is shown
setInterval(() => {
  if (state.session?.loggedIn && !$("view-shares").hidden && document.visibilityState === "visible")
    refreshShares().catch(() => {});
}, 5000);

function refreshAll() {
  act(undefined, () => Promise.all([refreshGroups(), refreshDownloads(), refreshShares(), refreshLimits()]));
}

// ---- speed limits -----------------------------------------------------------------

/** A limit in bytes a second, as the page shows speeds: null is none, 0 is paused. */
const limitText = (bps) => (bps === null ? "unlimited" : bps === 0 ? "paused" : rate(bps));

/** The scopes a limit can be set on: every transfer, a group of yours, an unfinished download. */
function limitScopes() {
  const scopes = [{ value: "", text: "Every transfer together" }];
  for (const g of state.groups) {
    if (g.role === "owner" || g.role === "member")
      scopes.push({ value: JSON.stringify({ groupId: g.groupId }), text: `Group ${g.groupId}` });
  }
  for (const d of state.downloads.values()) {
    if (d.state === "complete" || d.state === "failed") continue;
    scopes.push({
      value: JSON.stringify({ groupId: d.groupId, name: d.name }),
      text: `Download ${d.name} (${d.groupId})`,
    });
  }
  return scopes;
}

/** The scope select's options, the chosen one kept while it still exists; untouched when they are the same (an open list stays open). */
function renderLimitScopes() {
  const select = $("limit-scope");
  const scopes = limitScopes();
  const same =
    select.options.length === scopes.length && scopes.every((sc, i) => select.options[i].value === sc.value);
  if (same) return;
  const chosen = select.value;
  select.replaceChildren(...scopes.map((sc) => el("option", { value: sc.value, text: sc.text })));
  select.value = scopes.some((sc) => sc.value === chosen) ? chosen : "";
}

async function refreshLimits() {
  const l = await api("GET", "/limits");
  $("limits-now").textContent =
    `Every transfer together: upload ${limitText(l.up)}, download ${limitText(l.down)}`;
  const entries = [
    ...l.groups.map((g) => ({
      label: `Group ${g.groupId}`,
      text: `upload ${limitText(g.up)}, download ${limitText(g.down)}`,
      body: { groupId: g.groupId },
      directions: ["up", "down"].filter((dir) => g[dir] !== null),
    })),
    ...l.downloads.map((d) => ({
      label: `Download ${d.name} (${d.groupId})`,
      text: `download ${limitText(d.down)}`,
      body: { groupId: d.groupId, name: d.name },
      directions: ["down"],
    })),
  ];
  $("limits-list").replaceChildren(
    ...entries.map((e) =>
      el(
        "li",
        {},
        el("span", { text: `${e.label}: ${e.text}` }),
        el("button", {
          type: "button",
          class: "ghost",
          text: "Remove",
          "aria-label": `Remove the limits of ${e.label}`,
          onclick: (ev) =>
            act(ev.currentTarget, async () => {
              for (const direction of e.directions)
                await api("PUT", "/limits", { direction, rate: "unlimited", ...e.body });
              await refreshLimits();
              notice(`${e.label}: no limit of its own`);
            }),
        }),
      ),
    ),
  );
  renderLimitScopes();
}

/** A download's Limit button: the form set to that download, its download field ready. */
function limitDownload(d) {
  showTab("downloads");
  renderLimitScopes();
  $("limit-scope").value = JSON.stringify({ groupId: d.groupId, name: d.name });
  $("limit-down").focus();
}

$("limits-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  act(ev.submitter, async () => {
    const scopeValue = $("limit-scope").value;
    const scope = scopeValue === "" ? {} : JSON.parse(scopeValue);
    // download first: a download has no upload limit of its own, and its refusal must not lose the other
    for (const [direction, field] of [
      ["down", "limit-down"],
      ["up", "limit-up"],
    ]) {
      const rate = $(field).value.trim();
      if (rate === "") continue;
      await api("PUT", "/limits", { direction, rate, ...scope });
      $(field).value = "";
    }
    await refreshLimits();
    notice("Speed limits set");
  });
});

// ---- start ------------------------------------------------------------------------

async function start() {
  if (!token) {
    $("no-token").hidden = false;
    return;
  }
  try {
    showSession(await api("GET", "/session"));
  } catch (err) {
    $("no-token").hidden = false;
    notice(err.message, "error");
    return;
  }
  listen();
}

start();
