// Shapes of the REST API and WebSocket frames (docs/api.md, docs/protocol.md).

export type Role = "admin" | "agent" | "analyst";
export type Status = "waiting" | "active" | "pending" | "resolved";

export interface Agent {
  id: string;
  email: string;
  name: string;
  role: Role;
  status?: string;
  capacity: number;
  load?: number;
  disabled?: boolean;
}

export interface Conversation {
  id: string;
  ref: string;
  site: string;
  visitor_id: string;
  status: Status;
  agent_id?: string;
  priority: number;
  explanation?: string;
  /** the detector rule behind the explanation, when an offer started the chat. */
  cause?: string;
  email?: string;
  feedback?: string;
  last_seq: number;
  /** the last message, shortened by the server; absent before the first. */
  last_message?: MessagePreview;
  created_at: string;
  updated_at: string;
  assigned_at?: string;
  resolved_at?: string;
}

export interface Author {
  kind: "visitor" | "agent" | "system";
  id?: string;
  name?: string;
}

export interface MessagePreview {
  author: Author["kind"];
  text: string;
  at: string;
}

export interface Message {
  conversation_id: string;
  seq: number;
  client_id: string;
  author: Author;
  text: string;
  at: string;
}

export interface Note {
  id: string;
  conversation_id: string;
  agent_id: string;
  text: string;
  at: string;
}

export interface VisitorContext {
  trail?: { path: string; at: string; dwell_ms: number }[];
  errors?: { at: string; msg: string; count: number }[];
  requests?: { at: string; method: string; path: string; status: number; count: number }[];
  score?: number;
  explanation?: string;
  findings?: { rule: string; at: string; sentence: string; shadow: boolean }[];
}

export interface Visitor {
  id: string;
  site: string;
  external_id?: string;
  name?: string;
  email?: string;
  verified: boolean;
  attributes?: Record<string, string>;
  device?: string;
  locale?: string;
  created_at: string;
  last_seen: string;
  context?: VisitorContext;
}

export interface Site {
  key: string;
  name: string;
  origins: string[];
  identity_secret?: string;
  theme?: string;
  /** hide_read_receipts: the widget does not show visitors "Seen". */
  hide_read_receipts?: boolean;
  created_at: string;
}

/** Webhook is a site's subscription (docs/webhooks.md); health is set
 * while its deliveries are paused after failures in a row. */
export interface Webhook {
  id: string;
  site: string;
  url: string;
  secret: string;
  events: string[];
  created_at: string;
  health?: { paused_until: string; failures_in_a_row: number; last_error: string };
}

/** webhookEvents are the event types a webhook can take (chat.EventTypes,
 * docs/webhooks.md), in the server's order. */
export const webhookEvents = [
  "conversation.created", "conversation.assigned", "conversation.transferred",
  "conversation.resolved", "conversation.reopened", "message.created",
  "struggle.detected", "offer.shown", "offer.accepted", "offer.declined",
  "visitor.identified",
];

/** DeadDelivery is a webhook delivery that failed for a day and stopped. */
export interface DeadDelivery {
  id: string;
  subscription: string;
  event: string;
  attempts: number;
  died_at: string;
  last_error: string;
}

export interface Transcript {
  conversation: Conversation;
  visitor?: Visitor;
  messages: Message[];
  notes: Note[];
}

/** Frame is any server frame: the union of their fields. */
export interface Frame {
  type: string;
  id?: string;
  code?: string;
  message?: Message | string;
  retryable?: boolean;
  client_id?: string;
  conversation_id?: string;
  seq?: number;
  agent?: Agent;
  agents?: Agent[];
  queue?: Conversation[];
  assigned?: Conversation[];
  conversation?: Conversation;
  note?: Note;
  author?: Author;
  typing?: boolean;
  reader?: string;
}
