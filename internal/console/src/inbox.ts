// The inbox: the queue and the agent's conversations on the left, the
// conversation in the middle, what Lifeline knows about the visitor on the
// right.

import { api, ApiError } from "./api";
import { ago, clock, day, duration, h, replace, store, toast, uid } from "./dom";
import { state, type Thread } from "./state";
import { AssistPanel } from "./assist";
import type { AgentSocket } from "./socket";
import type { Conversation, Transcript, Visitor, Site } from "./types";

export interface InboxDeps {
  socket: AgentSocket;
  navigate(path: string): void;
  sites(): Promise<Site[]>;
}

const TYPING_SEND_MS = 3000;
const TYPING_STOP_MS = 4000;

interface Canned {
  shortcut: string;
  text: string;
}

const defaultCanned: Canned[] = [
  { shortcut: "hi", text: "Hi! Thanks for reaching out — I'm looking at this now." },
  { shortcut: "moment", text: "Give me a moment while I check that for you." },
  { shortcut: "thanks", text: "Thanks for your patience! Is there anything else I can help with?" },
];

export class Inbox {
  el: HTMLElement;
  private list = h("div", { class: "convlist", role: "listbox", "aria-label": "Conversations" });
  private search = h("input", { type: "search", class: "search", placeholder: "Search reference, email, text", "aria-label": "Search conversations" });
  private searchResults: Conversation[] | null = null;
  private searchNote = h("div", { class: "search-note" });
  private main = h("section", { class: "conv", "aria-label": "Conversation" });
  private side = h("aside", { class: "context", "aria-label": "Visitor context" });
  private cursor = 0; // index in the flattened list for j/k
  private flat: Conversation[] = [];
  private composerMode: "reply" | "note" = "reply";
  private typingSent = 0;
  private typingStop = 0;
  private sideFor = "";
  private canned: Canned[] = [];

  constructor(private deps: InboxDeps) {
    this.el = h("div", { class: "inbox" },
      h("nav", { class: "convnav" }, h("div", { class: "searchbox" }, this.search), this.searchNote, this.list),
      this.main,
      this.side,
    );
    this.canned = store.get(`lifeline.canned.${state.me?.id}`, defaultCanned);
    let searchTimer = 0;
    this.search.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = window.setTimeout(() => void this.runSearch(), 250);
    });
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.search.value = "";
        void this.runSearch();
        this.search.blur();
      } else if (e.key === "Enter") {
        clearTimeout(searchTimer);
        void this.runSearch();
      }
    });
    state.on((what, id) => {
      if (what === "conversation" || what === "message" || what === "read" || what === "refresh") this.renderList();
      if (id && id === state.selected) {
        if (what === "conversation") this.renderHeader();
        if (what === "message" || what === "note" || what === "typing" || what === "visitor-read") this.renderTranscript();
        if (what === "message") this.markSeen();
      }
    });
    window.setInterval(() => this.renderList(), 15_000); // wait times
    // The visitor keeps browsing while they chat: refresh what they did.
    window.setInterval(() => {
      if (document.visibilityState === "visible" && this.el.isConnected) this.refreshSide();
    }, 10_000);
    this.renderList();
    this.renderEmpty();
  }

  // ---- list ----

  private async runSearch(): Promise<void> {
    const q = this.search.value.trim();
    this.searchNote.textContent = "";
    if (!q) {
      this.searchResults = null;
      this.renderList();
      return;
    }
    if (/^lf-[a-z0-9]+$/i.test(q)) {
      try {
        const t = await api<Transcript>("GET", "/conversations/by-ref/" + encodeURIComponent(q));
        state.putConversation(t.conversation);
        this.searchResults = [t.conversation];
      } catch (e) {
        this.searchResults = [];
        this.searchNote.textContent = e instanceof ApiError && e.status === 404 ? `No conversation ${q.toUpperCase()}.` : String((e as Error).message);
      }
    } else if (q.includes("@")) {
      const found: Conversation[] = [];
      for (const s of await this.deps.sites()) {
        try {
          const r = await api<{ conversations: Conversation[] }>("GET", `/conversations?site=${encodeURIComponent(s.key)}&email=${encodeURIComponent(q)}&limit=100`);
          for (const c of r.conversations) {
            state.putConversation(c);
            found.push(c);
          }
        } catch {
          /* a site we cannot read */
        }
      }
      this.searchResults = found;
      if (!found.length) this.searchNote.textContent = `No conversations for ${q}.`;
    } else {
      const needle = q.toLowerCase();
      this.searchResults = [...state.convs.values()].filter((c) => {
        if ((c.explanation ?? "").toLowerCase().includes(needle) || c.ref.toLowerCase().includes(needle) || (c.email ?? "").toLowerCase().includes(needle)) return true;
        const t = state.threads.get(c.id);
        if (!t) return false;
        for (const m of t.messages.values()) if (m.text.toLowerCase().includes(needle)) return true;
        for (const n of t.notes.values()) if (n.text.toLowerCase().includes(needle)) return true;
        return false;
      });
      this.searchNote.textContent = "Text search covers the conversations loaded in this window.";
    }
    this.renderList();
  }

  renderList(): void {
    const sections: [string, Conversation[]][] = this.searchResults
      ? [["Results", this.searchResults]]
      : [["Queue", state.queue()], ["Mine", state.mine()], ["Recent", state.others()]];
    this.flat = sections.flatMap(([, cs]) => cs);
    const now = Date.now();
    const focusedID = this.flat[this.cursor]?.id;
    replace(this.list, sections.map(([title, cs]) => h("div", { class: "section" },
      h("h2", null, title, h("span", { class: "count" }, String(cs.length))),
      cs.length === 0 ? h("p", { class: "empty" }, title === "Queue" ? "Nobody is waiting." : title === "Mine" ? "No open conversations." : "Nothing yet.") : null,
      cs.map((c) => this.item(c, now, c.id === focusedID, title !== "Recent")),
    )));
    this.cursor = Math.min(this.cursor, Math.max(0, this.flat.length - 1));
  }

  /** lookUp fetches a listed conversation's visitor once, for their name. */
  private lookUp(id: string): void {
    if (!id || state.visitors.has(id)) return;
    state.visitors.set(id, null);
    api<{ visitor: Visitor }>("GET", "/visitors/" + encodeURIComponent(id)).then(
      (r) => {
        state.visitors.set(id, r.visitor);
        this.renderList();
      },
      () => { /* stays "Visitor" */ },
    );
  }

  private item(c: Conversation, now: number, focused: boolean, lookUp: boolean): HTMLElement {
    const unread = state.unread(c.id);
    const t = state.threads.get(c.id);
    const waitFrom = c.status === "waiting" ? c.created_at : c.updated_at;
    const v = t?.visitor ?? state.visitors.get(c.visitor_id);
    if (!v && lookUp) this.lookUp(c.visitor_id);
    const who = v?.name || v?.email || c.email || "Visitor";
    // The detector's reason, else what the visitor says, else how it began.
    const why = c.explanation || (c.last_message ? "" : c.email ? "Left a message" : "Started a chat");
    return h("div", {
      class: `item status-${c.status}${c.id === state.selected ? " selected" : ""}${focused ? " focused" : ""}${unread ? " unread" : ""}`,
      role: "option", "aria-selected": String(c.id === state.selected), "data-id": c.id, "data-ref": c.ref, tabindex: "-1",
      onclick: () => this.deps.navigate("/console/c/" + c.id),
    },
      h("div", { class: "row1" },
        h("span", { class: "ref" }, c.ref),
        c.priority > 0 ? h("span", { class: "prio", title: "Priority" }, `P${c.priority}`) : null,
        h("span", { class: "who" }, who),
        unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
      ),
      why ? h("div", { class: "row2" }, h("span", { class: "why" }, why)) : null,
      c.last_message ? h("div", { class: "last", title: c.last_message.text },
        c.last_message.author === "agent" ? h("span", { class: "by" }, "Agent: ") : null,
        c.last_message.text.replace(/\s+/g, " ").trim(),
      ) : null,
      h("div", { class: "row3" },
        h("span", { class: `pill ${c.status}` }, c.status),
        c.status !== "waiting" && c.agent_id && c.agent_id !== state.me?.id ? h("span", { class: "owner" }, state.agentName(c.agent_id)) : null,
        c.feedback ? h("span", { class: `feedback ${c.feedback}` }, c.feedback === "yes" ? "Solved" : "Not solved") : null,
        h("span", { class: "wait", title: c.status === "waiting" ? "Waiting for" : "Last change" }, c.status === "waiting" ? `waiting ${ago(waitFrom, now)}` : ago(waitFrom, now)),
      ),
    );
  }

  /** move moves the keyboard cursor in the list (j/k). */
  move(delta: number): void {
    if (!this.flat.length) return;
    this.cursor = (this.cursor + delta + this.flat.length) % this.flat.length;
    this.renderList();
    this.list.querySelector(".item.focused")?.scrollIntoView({ block: "nearest" });
  }

  openFocused(): void {
    const c = this.flat[this.cursor];
    if (c) this.deps.navigate("/console/c/" + c.id);
  }

  focusSearch(): void {
    this.search.focus();
    this.search.select();
  }

  // ---- conversation ----

  private renderEmpty(): void {
    replace(this.main, h("div", { class: "placeholder" },
      h("p", null, "Pick a conversation from the queue."),
      h("p", { class: "hint" }, "j / k to move, Enter to open, ? for all shortcuts."),
    ));
    replace(this.side, h("p", { class: "empty" }, "Open a conversation to see what Lifeline knows: who the visitor is, why they need help, the pages they saw and what went wrong."));
  }

  async select(id: string | null): Promise<void> {
    if (state.selected && state.selected !== id) {
      const prev = state.selected;
      this.stopTyping();
      const c = state.convs.get(prev);
      if (c && c.agent_id !== state.me?.id) this.deps.socket.send({ type: "close", conversation_id: prev });
    }
    state.selected = id;
    this.renderList();
    if (!id) {
      this.renderEmpty();
      return;
    }
    const i = this.flat.findIndex((c) => c.id === id);
    if (i >= 0) this.cursor = i;
    this.renderConversation();
    const t = state.thread(id);
    if (!t.loaded) {
      try {
        const tr = await api<Transcript>("GET", "/conversations/" + encodeURIComponent(id));
        state.putConversation(tr.conversation);
        for (const m of tr.messages) state.addMessage(m);
        for (const n of tr.notes) state.addNote(n);
        t.visitor = tr.visitor;
        t.loaded = true;
      } catch (e) {
        if (state.selected === id) replace(this.main, h("div", { class: "placeholder" }, h("p", { class: "error" }, (e as Error).message)));
        return;
      }
      if (state.selected !== id) return;
      this.renderConversation();
    }
    this.deps.socket.send({ type: "open", conversation_id: id, last_seq: t.lastSeq });
    this.markSeen();
  }

  /** reopened re-sends open for the selected conversation after a reconnect. */
  resubscribe(): void {
    const id = state.selected;
    if (id) this.deps.socket.send({ type: "open", conversation_id: id, last_seq: state.thread(id).lastSeq });
  }

  private header = h("header", { class: "convhead" });
  private transcript = h("div", { class: "transcript", role: "log", "aria-live": "polite" });
  private typingLine = h("div", { class: "typing", "aria-live": "polite" });
  private composer = h("div", { class: "composer" });
  private textarea = h("textarea", { rows: 3, "aria-label": "Message", placeholder: "" });
  private suggest = h("div", { class: "suggest", role: "listbox" });
  private assist = new AssistPanel(this.textarea);

  private renderConversation(): void {
    const id = state.selected;
    if (!id) return;
    replace(this.main, this.header, this.transcript, this.typingLine, this.composer);
    this.renderHeader();
    this.renderTranscript();
    this.renderComposer();
    void this.renderSide();
  }

  private renderHeader(): void {
    const c = state.convs.get(state.selected ?? "");
    if (!c) {
      replace(this.header, h("span", { class: "ref" }, "Loading…"));
      return;
    }
    const me = state.me!;
    const canAct = me.role !== "analyst";
    const actions: HTMLElement[] = [];
    if (canAct) {
      if (c.status === "waiting") actions.push(h("button", { class: "primary", "data-action": "claim", onclick: () => this.claim() }, "Claim", h("kbd", null, "c")));
      if (c.status !== "resolved") actions.push(h("button", { "data-action": "transfer", onclick: () => void this.transfer() }, "Transfer", h("kbd", null, "t")));
      if (c.status === "active" || c.status === "pending") actions.push(h("button", { "data-action": "resolve", onclick: () => this.resolve() }, "Resolve", h("kbd", null, "r")));
      if (c.status === "resolved") actions.push(h("button", { "data-action": "reopen", onclick: () => this.reopen() }, "Reopen", h("kbd", null, "o")));
    }
    replace(this.header,
      h("div", { class: "title" },
        h("span", { class: "ref", title: "Reference the customer sees" }, c.ref),
        h("span", { class: `pill ${c.status}`, "data-status": c.status }, c.status),
        c.agent_id ? h("span", { class: "owner" }, c.agent_id === me.id ? "You" : state.agentName(c.agent_id)) : null,
        c.feedback ? h("span", { class: `feedback ${c.feedback}` }, c.feedback === "yes" ? "Customer: solved" : "Customer: not solved") : null,
      ),
      c.explanation ? h("p", { class: "explanation" }, c.explanation) : null,
      h("div", { class: "actions" }, actions),
    );
    this.renderComposer();
  }

  private renderTranscript(): void {
    const id = state.selected;
    if (!id) return;
    const t = state.thread(id);
    const items: { at: number; el: HTMLElement }[] = [];
    let lastAgentSeq = 0;
    for (const m of t.messages.values()) if (m.author.kind === "agent") lastAgentSeq = Math.max(lastAgentSeq, m.seq);
    const seqs = [...t.messages.keys()].sort((a, b) => a - b);
    const c = state.convs.get(id);
    if (c && t.loaded) {
      // How the conversation began, so a transcript that opens with the
      // agent's first words does not look like it lost the visitor's.
      items.push({
        at: Date.parse(c.created_at) - 1,
        el: h("div", { class: "msg system start" },
          c.cause ? `Accepted a proactive offer (rule ${c.cause})` : c.email ? "Left a message" : "Started a chat",
          h("time", { datetime: c.created_at }, " · " + clock(c.created_at))),
      });
    }
    for (const seq of seqs) {
      const m = t.messages.get(seq)!;
      const mine = m.author.kind === "agent";
      items.push({
        at: Date.parse(m.at),
        el: h("div", { class: `msg ${m.author.kind}`, "data-seq": String(m.seq) },
          h("div", { class: "meta" }, h("span", { class: "author" }, m.author.kind === "visitor" ? (t.visitor?.name || "Visitor") : m.author.name || m.author.kind), h("time", { datetime: m.at }, clock(m.at))),
          h("div", { class: "text" }, m.text),
          mine && m.seq === lastAgentSeq && t.visitorRead >= m.seq ? h("div", { class: "receipt" }, "Seen") : null,
        ),
      });
    }
    for (const n of t.notes.values()) {
      items.push({
        at: Date.parse(n.at),
        el: h("div", { class: "msg note", "data-note": n.id },
          h("div", { class: "meta" }, h("span", { class: "author" }, "Internal note · " + state.agentName(n.agent_id)), h("time", { datetime: n.at }, clock(n.at))),
          h("div", { class: "text" }, n.text),
        ),
      });
    }
    for (const p of t.pending.values()) {
      items.push({
        at: Date.parse(p.at) + 1e12, // after everything stored
        el: h("div", { class: `msg agent pending${p.failed ? " failed" : ""}`, "data-client-id": p.client_id },
          h("div", { class: "meta" }, h("span", { class: "author" }, state.me?.name ?? "You"), h("span", null, p.failed ? "Not sent: " + p.failed : "Sending…")),
          h("div", { class: "text" }, p.text),
        ),
      });
    }
    items.sort((a, b) => a.at - b.at);
    const atBottom = this.transcript.scrollHeight - this.transcript.scrollTop - this.transcript.clientHeight < 40;
    replace(this.transcript, items.length ? items.map((i) => i.el) : h("p", { class: "empty" }, t.loaded ? "No messages yet." : "Loading…"));
    if (atBottom || items.length < 30) this.transcript.scrollTop = this.transcript.scrollHeight;
    this.typingLine.textContent = t.visitorTyping ? `${t.visitor?.name || "The visitor"} is typing…` : "";
  }

  private renderComposer(): void {
    const c = state.convs.get(state.selected ?? "");
    if (!c || !state.me) return;
    if (state.me.role === "analyst") {
      replace(this.composer, h("p", { class: "hint" }, "Analysts can read conversations but not reply."));
      return;
    }
    const t = state.thread(c.id);
    this.textarea.value = t.draft;
    const note = this.composerMode === "note";
    this.composer.className = "composer" + (note ? " note-mode" : "");
    this.textarea.placeholder = note
      ? "Internal note — only agents see this"
      : c.status === "resolved" ? "Reopen to reply" : "Reply to the visitor. /shortcut for canned responses. Enter sends, Shift+Enter new line.";
    this.assist.show(c.id);
    replace(this.composer,
      this.assist.el,
      h("div", { class: "tabs", role: "tablist" },
        h("button", { role: "tab", class: note ? "" : "on", "aria-selected": String(!note), "data-mode": "reply", onclick: () => this.setMode("reply") }, "Reply"),
        h("button", { role: "tab", class: note ? "on" : "", "aria-selected": String(note), "data-mode": "note", onclick: () => this.setMode("note") }, "Internal note", h("kbd", null, "n")),
        h("button", { class: "link", onclick: () => this.editCanned() }, "Canned responses"),
      ),
      this.suggest,
      this.textarea,
      h("div", { class: "send" }, h("button", { class: note ? "notebtn" : "primary", "data-action": "send", onclick: () => this.submit() }, note ? "Add note" : "Send")),
    );
  }

  setMode(m: "reply" | "note"): void {
    this.composerMode = m;
    this.renderComposer();
    this.textarea.focus();
  }

  toggleMode(): void {
    this.setMode(this.composerMode === "note" ? "reply" : "note");
  }

  focusComposer(): void {
    this.textarea.focus();
  }

  wireComposer(): void {
    this.textarea.addEventListener("input", () => {
      const id = state.selected;
      if (!id) return;
      state.thread(id).draft = this.textarea.value;
      this.expandCanned(false);
      if (this.composerMode === "reply") this.typing();
    });
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Tab" && this.suggest.childElementCount) {
        e.preventDefault();
        this.expandCanned(true);
      } else if (e.key === "Tab" && !e.shiftKey && this.composerMode === "reply" && this.assist.insertTop()) {
        e.preventDefault();
      } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        if (this.suggest.childElementCount) this.expandCanned(true);
        else this.submit();
      } else if (e.key === "Escape") {
        this.textarea.blur();
      }
    });
    this.textarea.addEventListener("blur", () => this.stopTyping());
  }

  /** expandCanned shows canned responses matching a trailing /word, and with pick replaces it by the first. */
  private expandCanned(pick: boolean): void {
    const m = /(^|\s)\/([\w-]*)$/.exec(this.textarea.value);
    replace(this.suggest);
    if (!m) return;
    const word = m[2].toLowerCase();
    const matches = this.canned.filter((c) => c.shortcut.toLowerCase().startsWith(word));
    if (!matches.length) return;
    const apply = (c: Canned) => {
      this.textarea.value = this.textarea.value.slice(0, m.index + m[1].length) + c.text;
      state.thread(state.selected!).draft = this.textarea.value;
      replace(this.suggest);
      this.textarea.focus();
    };
    if (pick) {
      apply(matches[0]);
      return;
    }
    replace(this.suggest, matches.slice(0, 6).map((c, i) => h("button", { class: "canned" + (i === 0 ? " first" : ""), role: "option", onmousedown: (e: Event) => { e.preventDefault(); apply(c); } },
      h("b", null, "/" + c.shortcut), " ", c.text)));
  }

  private editCanned(): void {
    const rows = h("div", { class: "canned-list" });
    const draw = () => replace(rows, this.canned.map((c, i) => h("div", { class: "canned-row" },
      h("b", null, "/" + c.shortcut), h("span", null, c.text),
      h("button", { class: "link", onclick: () => { this.canned.splice(i, 1); save(); draw(); } }, "Delete"))));
    const save = () => store.set(`lifeline.canned.${state.me?.id}`, this.canned);
    const sc = h("input", { placeholder: "shortcut", "aria-label": "Shortcut", pattern: "/?[A-Za-z0-9_\\-]+", required: true });
    const tx = h("textarea", { rows: 2, placeholder: "Text", "aria-label": "Text", required: true });
    draw();
    dialog("Canned responses", [
      h("p", { class: "hint" }, "Type /shortcut in the composer and press Tab or Enter. Stored in this browser for your account."),
      rows,
      h("form", { class: "canned-add", onsubmit: (e: Event) => {
        e.preventDefault();
        const s = sc.value.trim().replace(/^\//, "");
        if (!s || !tx.value.trim()) return;
        this.canned = this.canned.filter((c) => c.shortcut !== s).concat({ shortcut: s, text: tx.value.trim() });
        save();
        draw();
        sc.value = tx.value = "";
      } }, sc, tx, h("button", { type: "submit" }, "Add")),
    ]);
  }

  private typing(): void {
    const id = state.selected;
    if (!id) return;
    const now = Date.now();
    if (now - this.typingSent > TYPING_SEND_MS) {
      this.deps.socket.send({ type: "typing", conversation_id: id, typing: true });
      this.typingSent = now;
    }
    clearTimeout(this.typingStop);
    this.typingStop = window.setTimeout(() => this.stopTyping(), TYPING_STOP_MS);
  }

  private stopTyping(): void {
    clearTimeout(this.typingStop);
    if (this.typingSent && state.selected) this.deps.socket.send({ type: "typing", conversation_id: state.selected, typing: false });
    this.typingSent = 0;
  }

  private submit(): void {
    const id = state.selected;
    const text = this.textarea.value.trim();
    if (!id || !text) return;
    if ([...text].length > 4000) {
      toast("Messages are limited to 4,000 characters.", "error");
      return;
    }
    if (this.composerMode === "note") {
      if (!this.deps.socket.send({ type: "note", conversation_id: id, text })) {
        toast("Not connected: the note was not saved. Try again in a moment.", "error");
        return;
      }
    } else {
      const c = state.convs.get(id);
      if (c?.status === "resolved") {
        toast("Reopen the conversation to reply.", "error");
        return;
      }
      const p = { client_id: uid(), text, at: new Date().toISOString() };
      state.thread(id).pending.set(p.client_id, p);
      this.deps.socket.send({ type: "message", conversation_id: id, client_id: p.client_id, text });
      this.stopTyping();
    }
    this.textarea.value = "";
    state.thread(id).draft = "";
    this.renderTranscript();
  }

  /** resendPending resends unacknowledged messages after a reconnect; the server stores each client_id once. */
  resendPending(): void {
    for (const [id, t] of state.threads) {
      for (const p of t.pending.values()) {
        if (!p.failed) this.deps.socket.send({ type: "message", conversation_id: id, client_id: p.client_id, text: p.text });
      }
    }
  }

  /** failPending marks a pending message as refused by the server. */
  failPending(clientID: string, why: string): void {
    for (const [id, t] of state.threads) {
      const p = t.pending.get(clientID);
      if (p) {
        p.failed = why;
        if (id === state.selected) this.renderTranscript();
      }
    }
  }

  markSeen(): void {
    const id = state.selected;
    if (!id || document.visibilityState !== "visible") return;
    const t = state.thread(id);
    if (t.lastSeq && state.markRead(id, t.lastSeq) && state.me?.role !== "analyst") {
      this.deps.socket.send({ type: "read", conversation_id: id, seq: t.lastSeq });
    }
  }

  // ---- actions ----

  private current(): Conversation | undefined {
    return state.convs.get(state.selected ?? "");
  }

  claim(): void {
    const c = this.current();
    if (c?.status === "waiting") this.deps.socket.send({ type: "claim", conversation_id: c.id, id: "claim:" + c.id });
  }

  resolve(): void {
    const c = this.current();
    if (c && (c.status === "active" || c.status === "pending")) this.deps.socket.send({ type: "resolve", conversation_id: c.id });
  }

  reopen(): void {
    const c = this.current();
    if (c?.status === "resolved") this.deps.socket.send({ type: "reopen", conversation_id: c.id });
  }

  async transfer(): Promise<void> {
    const c = this.current();
    if (!c || c.status === "resolved" || state.me?.role === "analyst") return;
    let agents;
    try {
      agents = (await api<{ agents: import("./types").Agent[] }>("GET", "/agents")).agents;
    } catch (e) {
      toast((e as Error).message, "error");
      return;
    }
    const choices = agents.filter((a) => a.id !== c.agent_id && a.role !== "analyst");
    if (!choices.length) {
      toast("There is no other agent to transfer to.", "error");
      return;
    }
    const sel = h("select", { "aria-label": "Agent", required: true },
      choices.map((a) => h("option", { value: a.id }, `${a.name || a.email} — ${a.status ?? "offline"}, ${a.load ?? 0}/${a.capacity}`)));
    const note = h("textarea", { rows: 3, placeholder: "What they need to know (private note)", "aria-label": "Note" });
    const close = dialog(`Transfer ${c.ref}`, [
      h("form", { class: "stack", onsubmit: (e: Event) => {
        e.preventDefault();
        this.deps.socket.send({ type: "transfer", conversation_id: c.id, agent_id: sel.value, text: note.value.trim() });
        close();
      } },
      h("label", null, "To", sel), h("label", null, "Note", note),
      h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", "data-action": "do-transfer" }, "Transfer"))),
    ]);
    sel.focus();
  }

  // ---- context sidebar ----

  private async renderSide(): Promise<void> {
    const c = this.current();
    if (!c) return;
    if (this.sideFor !== c.id) {
      this.sideFor = c.id;
      replace(this.side, h("p", { class: "empty" }, "Loading context…"));
    }
    let v: Visitor | undefined;
    let previous: Conversation[] = [];
    try {
      const r = await api<{ visitor: Visitor; conversations: Conversation[] }>("GET", "/visitors/" + encodeURIComponent(c.visitor_id));
      v = r.visitor;
      previous = r.conversations.filter((p) => p.id !== c.id);
      const t = state.thread(c.id);
      t.visitor = v;
      state.visitors.set(v.id, v);
      this.assist.context(c.id, v);
    } catch (e) {
      if (this.sideFor === c.id) replace(this.side, h("p", { class: "error" }, (e as Error).message));
      return;
    }
    if (this.sideFor !== c.id) return;
    const ctx = v.context;
    const attrs = Object.entries(v.attributes ?? {});
    const explanation = ctx?.explanation || c.explanation;
    const findings = (ctx?.findings ?? []).filter((f) => !f.shadow && f.sentence !== explanation).slice(-5);
    replace(this.side,
      h("section", { class: "card identity" },
        h("h3", null, v.name || v.email || "Anonymous visitor"),
        v.external_id || v.email
          ? h("span", { class: v.verified ? "verified" : "unverified", title: v.verified ? "The site signed this identity" : "The site did not sign this identity: the visitor could have typed it" }, v.verified ? "✓ Verified" : "Unverified")
          : h("span", { class: "anon" }, "Not identified"),
        dl([["Email", v.email], ["User id", v.external_id], ["Device", v.device], ["Locale", v.locale], ["Site", v.site], ["First seen", day(v.created_at)], ["Left email", c.email]]),
      ),
      attrs.length ? h("section", { class: "card" }, h("h4", null, "Attributes"), dl(attrs)) : null,
      h("section", { class: "card" }, h("h4", null, "Why they need help"),
        explanation ? h("p", { class: "explanation" }, explanation) : h("p", { class: "empty" }, "The detector found nothing."),
        ctx?.score !== undefined ? h("p", { class: "hint" }, `Struggle score ${ctx.score.toFixed(1)}`) : null,
        // Shadow findings are for tuning rules, not for the agent.
        findings.length ? h("ul", { class: "findings" }, findings.map((f) => h("li", null, f.sentence, h("span", { class: "hint" }, ` · ${clock(f.at)}`)))) : null,
      ),
      ctx ? [
        h("section", { class: "card" }, h("h4", null, "Page trail"),
          ctx.trail?.length ? h("ol", { class: "trail" }, ctx.trail.map((p) => h("li", null, h("span", { class: "path" }, p.path), h("span", { class: "dwell" }, p.dwell_ms ? duration(p.dwell_ms) : "now")))) : h("p", { class: "empty" }, "No pages recorded.")),
        h("section", { class: "card" }, h("h4", null, "Errors"),
          ctx.errors?.length ? h("ul", { class: "errors" }, ctx.errors.map((e) => h("li", null, h("span", { class: "msgtext" }, e.msg), e.count > 1 ? h("span", { class: "times" }, `×${e.count}`) : null, h("span", { class: "hint" }, clock(e.at))))) : h("p", { class: "empty" }, "None.")),
        h("section", { class: "card" }, h("h4", null, "Failed requests"),
          ctx.requests?.length ? h("ul", { class: "errors" }, ctx.requests.map((r) => h("li", null, h("span", { class: "msgtext" }, `${r.method} ${r.path} → ${r.status || "network error"}`), r.count > 1 ? h("span", { class: "times" }, `×${r.count}`) : null, h("span", { class: "hint" }, clock(r.at))))) : h("p", { class: "empty" }, "None.")),
      ] : h("section", { class: "card" }, h("p", { class: "hint" }, "This server does not report the page trail, errors and requests yet.")),
      h("section", { class: "card" }, h("h4", null, "Previous conversations"),
        previous.length ? h("ul", { class: "previous" }, previous.map((p) => h("li", null,
          h("a", { href: "/console/c/" + p.id, "data-link": "" }, p.ref),
          h("span", { class: `pill ${p.status}` }, p.status),
          p.feedback ? h("span", { class: `feedback ${p.feedback}` }, p.feedback === "yes" ? "solved" : "not solved") : null,
          h("span", { class: "hint" }, day(p.created_at)),
          p.explanation ? h("div", { class: "hint" }, p.explanation) : null))) : h("p", { class: "empty" }, "First conversation.")),
    );
    this.renderTranscript(); // the visitor's name
  }

  /** refreshSide reloads the sidebar (the visitor's context changes while they browse). */
  refreshSide(): void {
    if (state.selected) void this.renderSide();
  }
}

function dl(rows: [string, string | undefined][]): HTMLElement {
  return h("dl", null, rows.filter(([, v]) => v).map(([k, v]) => [h("dt", null, k), h("dd", null, v!)]));
}

/** dialog shows a modal and returns a function that closes it. */
export function dialog(title: string, body: HTMLElement[]): () => void {
  const d = h("dialog", { class: "modal", "aria-label": title },
    h("header", null, h("h2", null, title), h("button", { class: "link close", "aria-label": "Close", onclick: () => d.close() }, "×")),
    body,
  );
  document.body.appendChild(d);
  d.addEventListener("close", () => d.remove());
  d.showModal();
  return () => d.close();
}

export function applyTyping(t: Thread, typing: boolean, onChange: () => void): void {
  t.visitorTyping = typing;
  clearTimeout(t.typingTimer);
  if (typing) t.typingTimer = window.setTimeout(() => { t.visitorTyping = false; onChange(); }, 8000);
  onChange();
}
