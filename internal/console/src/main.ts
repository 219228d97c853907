// The Lifeline console: login, the app shell, the router, the agent socket
// and the keyboard. See docs/console.md.

import { api, ApiError, setCSRF, setOnUnauthenticated } from "./api";
import { h, replace, store, toast } from "./dom";
import { applyTyping, dialog, Inbox } from "./inbox";
import { AgentsPage, DetectorsPage, SitesPage, VisitorsPage, type Page } from "./pages";
import { PlaybooksPage } from "./playbooks";
import { AgentSocket, type SocketState } from "./socket";
import { state } from "./state";
import type { Agent, Conversation, Frame, Message, Site } from "./types";

const root = document.getElementById("app")!;

interface Settings {
  notify: boolean;
  sound: boolean;
}

let settings: Settings = { notify: false, sound: false };
let socket: AgentSocket | null = null;
let inbox: Inbox | null = null;
let page: Page | null = null;
let sitesCache: Promise<Site[]> | null = null;
const connBox = h("span", { class: "conn", role: "status" });
const presenceSel = h("select", { "aria-label": "Presence", class: "presence" }, h("option", { value: "online" }, "Online"), h("option", { value: "away" }, "Away"));
const capacityIn = h("input", { type: "number", min: 1, max: 50, class: "capacity", "aria-label": "Capacity", title: "How many conversations you take at once" });
const loadBox = h("span", { class: "load", title: "Open conversations / capacity" });
const content = h("main", { class: "content" });
const navBox = h("nav", { class: "tabs-main", "aria-label": "Sections" });
let welcomed = false;

function sites(): Promise<Site[]> {
  sitesCache ??= api<{ sites: Site[] }>("GET", "/sites").then((r) => r.sites).catch(() => { sitesCache = null; return []; });
  return sitesCache;
}

// ---- boot and login ----

async function boot(): Promise<void> {
  setOnUnauthenticated(() => showLogin("Your session has expired. Log in again."));
  try {
    const me = await api<{ agent: Agent; csrf_token: string }>("GET", "/me");
    setCSRF(me.csrf_token);
    start(me.agent);
  } catch (e) {
    showLogin(e instanceof ApiError && e.status === 401 ? "" : (e as Error).message);
  }
}

function showLogin(why: string): void {
  socket?.stop();
  socket = null;
  inbox = null;
  page?.stop?.();
  page = null;
  state.selected = null;
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, "aria-label": "Email" });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true, "aria-label": "Password" });
  const err = h("p", { class: "error", role: "alert" }, why);
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  replace(root, h("div", { class: "login" },
    h("form", { class: "card", onsubmit: async (e: Event) => {
      e.preventDefault();
      button.disabled = true;
      err.textContent = "";
      try {
        const r = await api<{ agent: Agent; csrf_token: string }>("POST", "/login", { email: email.value, password: password.value });
        setCSRF(r.csrf_token);
        start(r.agent);
      } catch (x) {
        err.textContent = x instanceof ApiError && x.code === "bad_credentials" ? "Wrong email or password." : (x as Error).message;
        button.disabled = false;
      }
    } },
    h("h1", null, h("span", { class: "logo" }, "◐"), " Lifeline"),
    h("label", null, "Email", email),
    h("label", null, "Password", password),
    err, button),
  ));
  email.focus();
}

async function logout(): Promise<void> {
  try {
    await api("POST", "/logout");
  } catch {
    /* gone anyway */
  }
  showLogin("");
  history.replaceState(null, "", "/console");
}

// ---- shell ----

function start(me: Agent): void {
  state.setMe(me);
  settings = store.get(`lifeline.settings.${me.id}`, settings);
  state.convs.clear();
  state.threads.clear();
  welcomed = false;
  const canProduct = me.role === "admin" || me.role === "analyst";
  const links: [string, string][] = [["/console", "Inbox"], ["/console/visitors", "Visitors"]];
  if (canProduct) links.push(["/console/detectors", "Detectors"], ["/console/playbooks", "Playbooks"], ["/console/sites", "Sites"]);
  if (me.role === "admin") links.push(["/console/agents", "Agents"]);
  replace(navBox, links.map(([href, label]) => h("a", { href, "data-link": "" }, label)));
  presenceSel.disabled = me.role === "analyst";
  capacityIn.disabled = me.role === "analyst";
  capacityIn.value = String(me.capacity || 5);
  replace(root, h("div", { class: "shell" },
    h("header", { class: "top" },
      h("a", { class: "brand", href: "/console", "data-link": "" }, h("span", { class: "logo" }, "◐"), "Lifeline"),
      navBox,
      h("div", { class: "spacer" }),
      connBox,
      me.role !== "analyst" ? h("div", { class: "presencebox" }, presenceSel, loadBox, h("label", { class: "cap" }, "cap", capacityIn)) : null,
      h("button", { class: "link", title: "Settings", "aria-label": "Settings", onclick: openSettings }, "Settings"),
      h("button", { class: "link", title: "Keyboard shortcuts (?)", "aria-label": "Keyboard shortcuts", onclick: showHelp }, "?"),
      h("span", { class: "me", title: me.email }, me.name || me.email, h("span", { class: "role" }, me.role)),
      h("button", { class: "link", "data-action": "logout", onclick: () => void logout() }, "Log out"),
    ),
    content,
  ));
  socket = new AgentSocket({
    resume: () => state.resume(),
    frame,
    state: connState,
    opened: () => {
      inbox?.resendPending();
      inbox?.resubscribe();
    },
  });
  inbox = new Inbox({ socket, navigate, sites });
  inbox.wireComposer();
  socket.connect();
  route();
}

presenceSel.addEventListener("change", () => {
  showPresence(presenceSel.value);
  socket?.send({ type: "presence", status: presenceSel.value });
});

/** showPresence colours the presence choice, so that "Away" beside the
 * connection's green dot does not read as online. */
function showPresence(status: string): void {
  presenceSel.value = status;
  presenceSel.dataset.status = status;
}
capacityIn.addEventListener("change", () => {
  const n = Number(capacityIn.value);
  if (n >= 1 && n <= 50) socket?.send({ type: "presence", status: presenceSel.value, capacity: n });
});

function connState(s: SocketState, retryIn?: number): void {
  connBox.className = "conn " + s;
  connBox.title = s === "open" ? "Connected" : "";
  let text = "";
  if (s === "connecting") text = "Connecting…";
  if (s === "waiting") text = `Offline — retrying in ${Math.ceil((retryIn ?? 0) / 1000)} s`;
  replace(connBox, text, s === "waiting" ? h("button", { class: "link", onclick: () => socket?.reconnectNow() }, "Retry now") : null);
  if (s === "waiting") {
    // A refused handshake looks like a network failure to the browser:
    // check the session so an expired one leads to the login form.
    void api("GET", "/me").catch(() => {});
  }
}

function updateLoad(a: Agent): void {
  if (a.status === "online" || a.status === "away") showPresence(a.status);
  if (a.capacity) capacityIn.value = String(a.capacity);
  loadBox.textContent = `${a.load ?? state.mine().length}/${a.capacity}`;
}

// ---- frames ----

function frame(f: Frame): void {
  switch (f.type) {
    case "welcome": {
      const first = !welcomed;
      welcomed = true;
      if (f.agent) {
        state.me = { ...state.me!, ...f.agent };
        updateLoad(f.agent);
      }
      for (const c of [...(f.queue ?? []), ...(f.assigned ?? [])]) state.putConversation(c);
      // Waiting conversations claimed while we were away are no longer in the queue.
      const waiting = new Set((f.queue ?? []).map((c) => c.id));
      for (const c of state.convs.values()) {
        if (c.status === "waiting" && !waiting.has(c.id)) void refreshConversation(c.id);
      }
      state.emit("refresh");
      if (first && state.selected) void inbox?.select(state.selected);
      break;
    }
    case "message": {
      const m = f.message as Message;
      if (!m || typeof m !== "object") break;
      const fresh = state.addMessage(m);
      if (fresh && m.author.kind === "visitor") {
        const c = state.convs.get(m.conversation_id);
        if (c && (c.agent_id === state.me?.id) && (document.visibilityState !== "visible" || state.selected !== c.id)) {
          alertNew(`${c.ref}: ${m.text.slice(0, 80)}`, "message");
        }
      }
      break;
    }
    case "ack":
      // The message frame follows with the same client_id; nothing to do
      // until then, but a pending bubble can already say "sent".
      break;
    case "note":
      if (f.note) state.addNote(f.note);
      break;
    case "conversation": {
      const c = f.conversation as Conversation;
      if (!c) break;
      // A conversation transferred away changes the load as much as one assigned.
      const wasMine = state.me !== null && state.convs.get(c.id)?.agent_id === state.me.id;
      const isNew = state.putConversation(c);
      if (isNew && c.status === "waiting") alertNew(`New chat ${c.ref}${c.explanation ? ": " + c.explanation : ""}`, "chat");
      if (state.me && (c.agent_id === state.me.id || wasMine)) loadBox.textContent = `${state.mine().length}/${capacityIn.value}`;
      break;
    }
    case "typing":
      if (f.conversation_id && f.author?.kind === "visitor") {
        const id = f.conversation_id;
        applyTyping(state.thread(id), Boolean(f.typing), () => state.emit("typing", id));
      }
      break;
    case "read":
      if (f.conversation_id && f.reader === "visitor" && f.seq) {
        const t = state.thread(f.conversation_id);
        if (f.seq > t.visitorRead) {
          t.visitorRead = f.seq;
          state.emit("visitor-read", f.conversation_id);
        }
      }
      break;
    case "presence":
      for (const a of f.agents ?? []) {
        state.agents.set(a.id, a);
        if (a.id === state.me?.id) {
          state.me = { ...state.me, status: a.status, capacity: a.capacity, load: a.load };
          updateLoad(a);
        }
      }
      state.emit("agents");
      break;
    case "error":
      frameError(f);
      break;
  }
}

async function refreshConversation(id: string): Promise<void> {
  try {
    const t = await api<{ conversation: Conversation }>("GET", "/conversations/" + encodeURIComponent(id));
    state.putConversation(t.conversation);
  } catch {
    /* gone */
  }
}

function frameError(f: Frame): void {
  const text = typeof f.message === "string" ? f.message : f.code ?? "error";
  if (f.client_id) inbox?.failPending(f.client_id, text);
  if (f.code === "rate_limited") return;
  const friendly: Record<string, string> = {
    conflict: "Someone else got there first: " + text,
    capacity: "You are at capacity. Resolve a conversation or raise your capacity.",
    forbidden: "Your role may not do that.",
  };
  toast(friendly[f.code ?? ""] ?? text, "error");
  if (f.id?.startsWith("claim:")) void refreshConversation(f.id.slice(6));
}

// ---- notifications ----

let audio: AudioContext | null = null;

function alertNew(text: string, kind: "chat" | "message"): void {
  if (settings.sound) {
    try {
      audio ??= new AudioContext();
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = kind === "chat" ? 880 : 660;
      g.gain.setValueAtTime(0.08, audio.currentTime);
      g.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
      o.connect(g).connect(audio.destination);
      o.start();
      o.stop(audio.currentTime + 0.35);
    } catch {
      /* no audio */
    }
  }
  if (settings.notify && "Notification" in window && Notification.permission === "granted" && document.visibilityState !== "visible") {
    const n = new Notification("Lifeline", { body: text, tag: kind });
    n.onclick = () => {
      window.focus();
      n.close();
    };
  }
  if (kind === "chat") document.title = "● Lifeline console";
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    document.title = "Lifeline console";
    inbox?.markSeen();
  }
});

function openSettings(): void {
  const notify = h("input", { type: "checkbox", checked: settings.notify, "data-setting": "notify" });
  const sound = h("input", { type: "checkbox", checked: settings.sound, "data-setting": "sound" });
  const save = () => store.set(`lifeline.settings.${state.me?.id}`, settings);
  notify.addEventListener("change", async () => {
    settings.notify = notify.checked;
    if (notify.checked && "Notification" in window && Notification.permission === "default") {
      const p = await Notification.requestPermission();
      if (p !== "granted") {
        toast("The browser refused notifications; allow them in the site settings.", "error");
        settings.notify = notify.checked = false;
      }
    }
    save();
  });
  sound.addEventListener("change", () => {
    settings.sound = sound.checked;
    save();
    if (sound.checked) alertNew("test", "chat");
  });
  dialog("Settings", [
    h("label", { class: "check" }, notify, "Desktop notification for a new chat or message while this tab is in the background"),
    h("label", { class: "check" }, sound, "Sound for a new chat or message"),
    h("p", { class: "hint" }, "Stored in this browser for your account."),
  ]);
}

const shortcuts: [string, string][] = [
  ["j / k", "next / previous conversation in the list"],
  ["Enter", "open the selected conversation"],
  ["/", "search by reference (LF-…), email or text"],
  ["c", "claim"],
  ["r", "resolve"],
  ["o", "reopen"],
  ["t", "transfer"],
  ["n", "switch the composer between reply and internal note"],
  ["e", "write in the composer"],
  ["Esc", "leave the composer or the search"],
  ["g i / g v", "go to the inbox / live visitors"],
  ["?", "this help"],
];

function showHelp(): void {
  dialog("Keyboard shortcuts", [h("table", { class: "keys" }, shortcuts.map(([k, d]) => h("tr", null, h("td", null, h("kbd", null, k)), h("td", null, d))))]);
}

let gPressed = 0;

document.addEventListener("keydown", (e) => {
  if (!state.me || !inbox || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target as HTMLElement;
  if (t.closest("input, textarea, select, dialog, [contenteditable]")) return;
  const inInbox = location.pathname === "/console" || location.pathname.startsWith("/console/c/");
  if (Date.now() - gPressed < 1000) {
    gPressed = 0;
    if (e.key === "i") navigate("/console");
    if (e.key === "v") navigate("/console/visitors");
    return;
  }
  switch (e.key) {
    case "?":
      showHelp();
      break;
    case "g":
      gPressed = Date.now();
      break;
    case "/":
      if (!inInbox) navigate("/console");
      inbox.focusSearch();
      break;
    default:
      if (!inInbox) return;
      switch (e.key) {
        case "j": inbox.move(1); break;
        case "k": inbox.move(-1); break;
        case "Enter": inbox.openFocused(); break;
        case "c": inbox.claim(); break;
        case "r": inbox.resolve(); break;
        case "o": inbox.reopen(); break;
        case "t": void inbox.transfer(); break;
        case "n": inbox.toggleMode(); break;
        case "e": inbox.focusComposer(); break;
        default: return;
      }
  }
  e.preventDefault();
});

// ---- routing ----

function navigate(path: string): void {
  if (location.pathname !== path) history.pushState(null, "", path);
  route();
}

document.addEventListener("click", (e) => {
  const a = (e.target as HTMLElement).closest("a[data-link]") as HTMLAnchorElement | null;
  if (!a || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.pathname);
});

window.addEventListener("popstate", route);

function route(): void {
  if (!state.me || !inbox || !socket) return;
  const path = location.pathname.replace(/\/+$/, "") || "/console";
  for (const a of navBox.querySelectorAll("a")) {
    const here = a.pathname === "/console" ? path === "/console" || path.startsWith("/console/c/") : path.startsWith(a.pathname);
    a.classList.toggle("on", here);
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  page?.stop?.();
  page = null;
  const me = state.me;
  const conv = /^\/console\/c\/([^/]+)$/.exec(path);
  if (path === "/console" || conv) {
    if (content.firstChild !== inbox.el) replace(content, inbox.el);
    void inbox.select(conv ? decodeURIComponent(conv[1]) : null);
    return;
  }
  const deps = { socket, sites, me, navigate };
  const product = me.role === "admin" || me.role === "analyst";
  if (path === "/console/visitors") page = new VisitorsPage(deps);
  else if (path === "/console/detectors" && product) page = new DetectorsPage(deps);
  else if (path === "/console/playbooks" && product) page = new PlaybooksPage(deps);
  else if (path === "/console/sites" && product) page = new SitesPage(deps);
  else if (path === "/console/agents" && me.role === "admin") page = new AgentsPage(deps);
  if (!page) {
    replace(content, h("div", { class: "placeholder" }, h("p", null, "This page does not exist or your role may not see it.")));
    return;
  }
  replace(content, page.el);
}

// Tests reach the live state through this one handle.
(window as unknown as { lifelineConsole: unknown }).lifelineConsole = {
  state,
  drop: () => socket?.drop(),
};

void boot();
