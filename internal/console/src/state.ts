// The console's live state: conversations, their messages (one per seq),
// notes, unread counts, typing and read receipts. Views read it and
// subscribe to changes; only main.ts writes it from frames.

import { store } from "./dom";
import type { Agent, Conversation, Message, Note, Visitor } from "./types";

export interface Pending {
  client_id: string;
  text: string;
  at: string;
  failed?: string;
}

export interface Thread {
  messages: Map<number, Message>;
  notes: Map<string, Note>;
  pending: Map<string, Pending>;
  /** highest seq shown; used to resume. */
  lastSeq: number;
  /** the visitor has read up to this seq. */
  visitorRead: number;
  visitorTyping: boolean;
  typingTimer: number;
  /** the transcript was fetched once. */
  loaded: boolean;
  visitor?: Visitor;
  draft: string;
}

type Listener = (what: string, id?: string) => void;

export class State {
  me: Agent | null = null;
  convs = new Map<string, Conversation>();
  threads = new Map<string, Thread>();
  agents = new Map<string, Agent>();
  /** what this agent has read, per conversation (kept across reloads). */
  readSeq: Record<string, number> = {};
  selected: string | null = null;
  /**
   * visitors the list has looked up, by id, for the names in the queue
   * (conversation records carry none); null while the lookup runs or after
   * it failed.
   */
  visitors = new Map<string, Visitor | null>();
  private listeners = new Set<Listener>();

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  emit(what: string, id?: string): void {
    for (const l of this.listeners) l(what, id);
  }

  setMe(a: Agent): void {
    this.me = a;
    this.readSeq = store.get(`lifeline.read.${a.id}`, {} as Record<string, number>);
  }

  thread(id: string): Thread {
    let t = this.threads.get(id);
    if (!t) {
      t = { messages: new Map(), notes: new Map(), pending: new Map(), lastSeq: 0, visitorRead: 0, visitorTyping: false, typingTimer: 0, loaded: false, draft: "" };
      this.threads.set(id, t);
    }
    return t;
  }

  /** putConversation stores a conversation; it returns whether it is new. */
  putConversation(c: Conversation): boolean {
    const old = this.convs.get(c.id);
    if (old && Date.parse(old.updated_at) > Date.parse(c.updated_at)) return false;
    this.convs.set(c.id, c);
    this.emit("conversation", c.id);
    return !old;
  }

  /**
   * addMessage stores a message once per seq, whatever path it came by
   * (the transcript, a resume, live traffic); it returns whether it is new.
   */
  addMessage(m: Message): boolean {
    const t = this.thread(m.conversation_id);
    if (t.messages.has(m.seq)) return false;
    t.messages.set(m.seq, m);
    t.pending.delete(m.client_id);
    if (m.seq > t.lastSeq) t.lastSeq = m.seq;
    if (m.author.kind === "visitor") {
      t.visitorTyping = false;
    }
    const c = this.convs.get(m.conversation_id);
    if (c && m.seq >= c.last_seq) {
      c.last_seq = m.seq;
      c.last_message = { author: m.author.kind, text: m.text, at: m.at };
    }
    this.emit("message", m.conversation_id);
    return true;
  }

  addNote(n: Note): void {
    const t = this.thread(n.conversation_id);
    if (t.notes.has(n.id)) return;
    t.notes.set(n.id, n);
    this.emit("note", n.conversation_id);
  }

  /** unread counts the visitor's messages this agent has not seen. */
  unread(id: string): number {
    const t = this.threads.get(id);
    const read = this.readSeq[id] ?? 0;
    if (!t) return 0;
    let n = 0;
    for (const m of t.messages.values()) if (m.seq > read && m.author.kind === "visitor") n++;
    return n;
  }

  /** markRead records that the agent saw everything up to seq. */
  markRead(id: string, seq: number): boolean {
    if ((this.readSeq[id] ?? 0) >= seq) return false;
    this.readSeq[id] = seq;
    if (this.me) store.set(`lifeline.read.${this.me.id}`, this.readSeq);
    this.emit("read", id);
    return true;
  }

  /** resume is the hello resume map: the last seq shown per conversation. */
  resume(): Record<string, number> {
    const r: Record<string, number> = {};
    for (const [id, t] of this.threads) {
      const c = this.convs.get(id);
      if (t.lastSeq > 0 && c && c.status !== "resolved") r[id] = t.lastSeq;
    }
    return r;
  }

  /** sorted lists for the sidebar. */
  queue(): Conversation[] {
    return [...this.convs.values()]
      .filter((c) => c.status === "waiting")
      .sort((a, b) => b.priority - a.priority || Date.parse(a.created_at) - Date.parse(b.created_at));
  }

  mine(): Conversation[] {
    const me = this.me?.id;
    return [...this.convs.values()]
      .filter((c) => c.agent_id === me && (c.status === "active" || c.status === "pending"))
      .sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at));
  }

  others(): Conversation[] {
    const me = this.me?.id;
    return [...this.convs.values()]
      .filter((c) => c.status !== "waiting" && !(c.agent_id === me && c.status !== "resolved"))
      .sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at))
      .slice(0, 50);
  }

  agentName(id: string | undefined): string {
    if (!id) return "";
    const a = this.agents.get(id);
    return a ? a.name || a.email : "another agent";
  }
}

export const state = new State();
