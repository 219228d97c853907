// The widget's controller: snippet API, connection, conversation state and
// the chat UI's behaviour. docs/protocol.md is the contract with the server.

import * as C from './capture';
import { S, T, addStyles, defineElement, h, icon, ink, trapFocus } from './ui';
import { D, W, allowParams, emit, isObj, now, on, safe, store, str, uuid, warn, type Obj } from './util';

/** A chat message as the widget keeps it. q: queued, not yet acknowledged. */
interface Msg {
  seq?: number;
  cid: string;
  text: string;
  who: string;
  name?: string;
  q?: boolean;
}

/** The conversation as the server last described it. */
interface Conv {
  id: string;
  ref?: string;
  status?: string;
  agent?: { name?: string };
  feedback?: unknown;
  agent_read?: number;
}

/** What survives reloads, per site, in localStorage. */
interface State {
  tok?: string;
  seq: number;
  msgs: Msg[];
  out: Msg[];
  conv?: Conv;
  consent?: boolean;
  decl?: number;
  /** ar: the last message support has seen (their read receipt). */
  ar?: number;
}

type Stub = ((...a: unknown[]) => unknown) & { q?: ArrayLike<unknown>[]; loaded?: boolean };

let site = '';
let origin = '';
let key = '';
let st: State = { seq: 0, msgs: [], out: [] };
let ws: WebSocket | null = null;
let ready = false;
let wasReady = false;
let tries = 0;
let retryT = 0;
let agentsOnline = true;
/** receipts: whether the site shows "Seen" (welcome.site.read_receipts). */
let receipts = true;
let identity: Obj | null = null;
let attrs: Obj = {};
let evq: C.Ev[] = [];
let flushT = 0;
let isOpen = false;
let unread = 0;
let readSeq = 0;
let announced = false;
let lastFocus: Element | null = null;
let view = 'chat';
let typingT = 0;
let agentTypingT = 0;
let offerId = '';
let offerMode = '';
let queueText = '';
let rawFetch: typeof fetch;
let bc: BroadcastChannel | null = null;
const nodes: Record<string, HTMLElement> = {};

const save = (): void => store.set(key, { tok: st.tok, seq: st.seq, msgs: st.msgs.slice(-100), out: st.out, conv: st.conv, consent: st.consent, decl: st.decl, ar: st.ar });

// ---------------------------------------------------------------- the UI

const host = D.createElement('lifeline-widget');
const root = host.attachShadow({ mode: 'open' });
const badge = h('span', { class: 'b', part: 'badge', 'aria-hidden': 'true', hidden: '' });
const launcher = h('button', { class: 'l', part: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-haspopup': 'dialog' }, icon('chat'), badge);
const title = h('h2', { id: 'llt' });
const sub = h('p', { part: 'status' });
const ref = h('p', { class: 'ref', part: 'reference' });
const seenBtn = h('button', { class: 'ib', type: 'button' }, icon('eye'));
const closeBtn = h('button', { class: 'ib', type: 'button' }, icon('down'));
const log = h('div', { class: 's', part: 'transcript', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0' });
const hi = h('div', { class: 'hi', part: 'greeting' });
const typing = h('div', { class: 'ty', role: 'status', hidden: '' }, h('i'), h('i'), h('i'));
const fb = h('div', { class: 'fb', part: 'feedback', hidden: '' });
const offline = h('div', { class: 'o', part: 'offline', role: 'status', hidden: '' });
const input = h('textarea', { rows: '1', part: 'input' });
const sendBtn = h('button', { class: 'pri', type: 'submit', part: 'send' });
const composer = h('form', { class: 'c', part: 'composer' }, input, sendBtn);
const form = h('form', { class: 'f', part: 'leave', hidden: '' });
const seenBox = h('div', { class: 'f', part: 'seen', hidden: '', tabindex: '-1' });
const receiptEl = h('div', { class: 'rc', part: 'receipt', hidden: '' });
const panel = h(
  'div',
  { class: 'p', part: 'panel', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'llt', hidden: '' },
  h('div', { class: 'h', part: 'header' }, h('div', {}, title, sub, ref), seenBtn, closeBtn),
  log,
  form,
  seenBox,
  offline,
  composer,
);
const card = h('div', { class: 'card', part: 'offer', role: 'region', hidden: '' });

function label(): void {
  title.textContent = S.title;
  launcher.setAttribute('aria-label', isOpen ? S.close : S.open);
  closeBtn.setAttribute('aria-label', S.close);
  seenBtn.setAttribute('aria-label', S.seen);
  seenBtn.title = S.seen;
  input.placeholder = S.placeholder;
  input.setAttribute('aria-label', S.placeholder);
  sendBtn.textContent = S.send;
  offline.textContent = S.offline;
  typing.setAttribute('aria-label', T('typing', { name: (st.conv && st.conv.agent && st.conv.agent.name) || S.team }));
  status();
}

function status(): void {
  const c = st.conv;
  sub.textContent = c && c.status === 'waiting' && queueText ? queueText : c && c.agent && c.agent.name && c.status !== 'resolved' ? T('agent', { name: c.agent.name }) : agentsOnline ? S.subtitle : S.away;
  hi.textContent = S.welcome;
  ref.textContent = c && c.ref ? T('ref', { ref: c.ref }) : '';
  fb.hidden = !(c && c.status === 'resolved' && c.feedback === undefined);
  if (!fb.hidden && !fb.firstChild) {
    const yes = h('button', { class: 'pri', type: 'button', text: S.yes });
    const no = h('button', { class: 'sec', type: 'button', text: S.no });
    fb.append(h('p', { text: S.solved }), h('div', { class: 'row' }, yes, no));
    const answer = (solved: boolean) => (): void => {
      if (!st.conv) return;
      send({ type: 'feedback', conversation_id: st.conv.id, solved });
      st.conv.feedback = solved;
      save();
      fb.textContent = '';
      fb.hidden = true;
      note(solved ? S.thanks : S.reopened);
    };
    yes.onclick = safe(answer(true));
    no.onclick = safe(answer(false));
  }
  if (fb.hidden) fb.textContent = '';
  else log.scrollTop = log.scrollHeight;
  const leave = !agentsOnline && (!c || c.status === 'resolved') && view !== 'left';
  if (view !== 'seen') show(leave ? 'leave' : view === 'left' ? 'left' : 'chat');
}

/** Switches the panel between chat, the leave-a-message form and "What
 * support can see". */
function show(v: string): void {
  view = v;
  log.hidden = composer.hidden = v !== 'chat';
  form.hidden = v !== 'leave' && v !== 'left';
  seenBox.hidden = v !== 'seen';
  offline.hidden = ready || v === 'seen';
  if (v === 'leave' && !form.firstChild) leaveForm();
}

function note(text: string): void {
  log.insertBefore(h('div', { class: 'st', text }), typing);
  log.scrollTop = log.scrollHeight;
}

function render(m: Msg): void {
  const id = m.cid || 's' + m.seq;
  let el = nodes[id];
  if (!el) {
    el = nodes[id] = h('div', { class: 'm' + (m.who === 'visitor' ? ' v' : ''), part: 'message ' + (m.who === 'visitor' ? 'visitor' : 'agent') });
    el.textContent = m.text;
    // Keep transcript order by seq; queued messages go last.
    let before: Element = typing;
    if (m.seq) {
      for (const o of st.msgs) {
        const n = nodes[o.cid || 's' + o.seq];
        if (o !== m && n && n.parentNode && (!o.seq || o.seq > (m.seq as number))) {
          before = n.previousElementSibling && n.previousElementSibling.classList.contains('n') ? n.previousElementSibling : n;
          break;
        }
      }
    }
    let prev = before.previousElementSibling;
    if (prev === receiptEl) prev = prev.previousElementSibling; // not a message
    const who = m.who === 'visitor' ? S.you : m.name || S.team;
    if (!prev || !prev.classList.contains('m') || prev.classList.contains('v') !== (m.who === 'visitor')) {
      log.insertBefore(h('div', { class: 'n' + (m.who === 'visitor' ? ' v' : ''), text: who }), before);
    }
    log.insertBefore(el, before);
    log.scrollTop = log.scrollHeight;
  }
  el.classList.toggle('q', !!m.q);
  el.title = m.q ? S.sending : '';
  receipt();
}

/** receipt shows "Seen" under the visitor's last message once support has
 * read it, unless the site turned receipts off. It moves only when that
 * message changes: the transcript is a live region, and every insertion
 * would be read out again. */
function receipt(): void {
  if (!receipts) {
    receiptEl.hidden = true;
    return;
  }
  let last: Msg | undefined;
  for (const m of st.msgs) if (m.who === 'visitor' && m.seq && (!last || m.seq > (last.seq as number))) last = m;
  const el = last && (st.ar || 0) >= (last.seq as number) ? nodes[last.cid || 's' + last.seq] : undefined;
  receiptEl.hidden = !el;
  if (receiptEl.textContent !== S.read) receiptEl.textContent = S.read;
  if (el && el.parentNode && el.nextSibling !== receiptEl) log.insertBefore(receiptEl, el.nextSibling);
}

function setUnread(n: number): void {
  if (n === unread) return;
  unread = n;
  badge.textContent = String(n);
  badge.hidden = !n;
  emit('unread', { count: n });
}

function markRead(): void {
  if (isOpen && st.seq && D.visibilityState === 'visible') {
    if (st.seq > readSeq && send({ type: 'read', seq: st.seq })) readSeq = st.seq;
    setUnread(0);
    if (bc) bc.postMessage({ read: st.seq });
  }
}

function open(): void {
  if (isOpen) return;
  isOpen = true;
  hideOffer();
  lastFocus = D.activeElement;
  panel.hidden = false;
  host.setAttribute('data-open', '');
  launcher.setAttribute('aria-expanded', 'true');
  launcher.replaceChildren(icon('x'), badge);
  label();
  log.scrollTop = log.scrollHeight;
  (view === 'leave' ? (form.querySelector('input') as HTMLElement) : input).focus();
  markRead();
  emit('open');
}

function close(): void {
  if (!isOpen) return;
  isOpen = false;
  panel.hidden = true;
  host.removeAttribute('data-open');
  if (view === 'seen') status();
  launcher.setAttribute('aria-expanded', 'false');
  launcher.replaceChildren(icon('chat'), badge);
  label();
  const f = lastFocus as HTMLElement | null;
  if (f && f.focus && f !== D.body) f.focus();
  else launcher.focus();
  emit('close');
}

function leaveForm(): void {
  const email = h('input', { type: 'email', required: '', autocomplete: 'email', name: 'email' });
  const text = h('textarea', { required: '', name: 'message' });
  const btn = h('button', { class: 'pri', type: 'submit', text: S.leaveSend });
  form.replaceChildren(
    h('h3', { text: S.leaveTitle }),
    h('p', { text: S.leaveBody }),
    h('label', { text: S.email }, email),
    h('label', { text: S.message }, text),
    h('div', { class: 'row' }, btn),
  );
  form.onsubmit = safe((e: Event) => {
    e.preventDefault();
    if (!send({ type: 'leave_message', client_id: uuid(), email: email.value, text: text.value })) return;
    const done = h('p', { text: T('left', { email: email.value }), role: 'status' });
    form.replaceChildren(h('h3', { text: S.leaveTitle }), done);
    view = 'left';
  });
}

function seenView(): void {
  const dl = h('dl');
  const row = (k: string, v: string | string[]): void => {
    const list = typeof v === 'string' ? [v] : v;
    dl.append(h('dt', { text: S[k] }), h('dd', { text: list.length ? list.join('\n') : S.none }));
  };
  const id = identity;
  row('identity', id ? [str(id.name), str(id.email), str(id.id) && 'ID ' + str(id.id), id.hash ? S.verified : S.unverified].filter(Boolean).join(' · ') : S.anonymous);
  const a = Object.assign({}, isObj(id && id.attributes) ? (id as Obj).attributes : {}, attrs) as Obj;
  row('attributes', Object.keys(a).map((k) => k + ': ' + a[k]));
  if (st.consent === false) row('pages', S.signalsOff);
  else {
    row('pages', C.seen.pages.slice(-8));
    row('errors', C.seen.errors.slice(-5));
    row('requests', C.seen.requests.slice(-5));
  }
  row('device', device().kind + ', ' + innerWidth + '×' + innerHeight);
  row('locale', navigator.language || '');
  const back = h('button', { class: 'sec', type: 'button', text: S.back });
  back.onclick = safe(() => {
    status();
    input.focus();
  });
  seenBox.replaceChildren(h('h3', { text: S.seen }), h('p', { text: S.seenIntro }), dl, h('div', { class: 'row' }, back));
  show('seen');
  seenBox.focus();
}

function showOffer(text: string): void {
  const acc = h('button', { class: 'pri', type: 'button', text: offerMode === 'message' ? S.acceptMessage : S.accept });
  const dec = h('button', { class: 'sec', type: 'button', text: S.decline });
  card.replaceChildren(h('div', { class: 't' }, h('div', { class: 'av' }, icon('chat')), h('p', { text, id: 'llo' })), h('div', { class: 'row' }, dec, acc));
  card.setAttribute('aria-labelledby', 'llo');
  card.hidden = false;
  acc.onclick = safe(() => answerOffer(true));
  dec.onclick = safe(() => answerOffer(false));
}

function hideOffer(): void {
  card.hidden = true;
}

function answerOffer(accept: boolean): void {
  send({ type: 'offer_response', offer_id: offerId, accept });
  hideOffer();
  emit(accept ? 'offer:accepted' : 'offer:declined', { offer_id: offerId });
  if (accept) {
    if (offerMode === 'message') agentsOnline = false;
    status();
    open();
  } else {
    st.decl = now();
    save();
    launcher.focus();
  }
}

function buildUI(): void {
  addStyles(root);
  root.append(card, panel, launcher);
  label();
  launcher.onclick = safe(() => (isOpen ? close() : open()));
  closeBtn.onclick = safe(close);
  seenBtn.onclick = safe(() => (view === 'seen' ? status() : seenView()));
  trapFocus(root, panel, close);
  composer.onsubmit = safe((e: Event) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    input.style.height = '';
    say(text);
  });
  input.onkeydown = (e: KeyboardEvent): void => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  };
  input.oninput = safe(() => {
    // Grow with the text up to 120 px, then scroll.
    const st = input.style;
    st.height = 'auto';
    const h = input.scrollHeight + 2;
    st.height = Math.min(120, h) + 'px';
    st.overflowY = h > 120 ? 'auto' : 'hidden';
    if (!typingT) send({ type: 'typing', typing: true });
    clearTimeout(typingT);
    typingT = W.setTimeout(() => {
      typingT = 0;
      send({ type: 'typing', typing: false });
    }, 3000);
  });
  log.append(hi, typing, fb);
  for (const m of st.msgs) render(m);
  status();
  // Mount once the page is parsed, so the launcher comes after everything
  // in the body: an async script can run while the parser is still in the
  // body, and a fixed box the page declares later with the same top
  // z-index would then paint over it. Then lift the widget into the top
  // layer, above every z-index, so that a box the page's scripts add later
  // (a cookie banner, a promotion) cannot cover it either; the page's own
  // modal dialogs, opened later, still come above it. Browsers without
  // the Popover API keep the z-index and the place at the end of the body.
  const mount = (): void => {
    (D.body || D.documentElement).append(host);
    if (typeof host.showPopover === 'function') {
      host.popover = 'manual';
      host.showPopover();
    }
  };
  if (D.readyState === 'loading') D.addEventListener('DOMContentLoaded', mount);
  else mount();
}

// ------------------------------------------------------- the conversation

function say(text: string): void {
  const m: Msg = { cid: uuid(), text: text.slice(0, 4000), who: 'visitor', q: true };
  st.msgs.push(m);
  st.out.push(m);
  save();
  render(m);
  if (typingT) {
    clearTimeout(typingT);
    typingT = 0;
  }
  send({ type: 'message', client_id: m.cid, text: m.text });
}

function addMsg(raw: Obj, fromTab?: boolean): void {
  const a = (isObj(raw.author) ? raw.author : {}) as Obj;
  const m: Msg = { seq: Number(raw.seq) || undefined, cid: str(raw.client_id), text: str(raw.text), who: str(a.kind) || 'agent', name: str(a.name) };
  if (m.who !== 'visitor') {
    typing.hidden = true;
    if (a.name && st.conv && !st.conv.agent) st.conv.agent = { name: m.name };
  }
  const old = st.msgs.find((x) => (m.seq && x.seq === m.seq) || (m.cid && x.cid === m.cid));
  if (old) {
    if (m.seq) old.seq = m.seq;
    old.q = false;
    st.out = st.out.filter((x) => x.cid !== old.cid);
    render(old);
  } else {
    st.msgs.push(m);
    render(m);
    if (m.who !== 'visitor') {
      emit('message', { text: m.text, author: { kind: m.who, name: m.name } });
      if (!isOpen || D.visibilityState !== 'visible') setUnread(unread + 1);
    }
  }
  if (m.seq && m.seq > st.seq) st.seq = m.seq;
  save();
  markRead();
  if (bc && !fromTab) bc.postMessage({ m: raw });
}

function setConv(c: unknown): void {
  if (!isObj(c) || !c.id) return;
  const prev = st.conv;
  if (prev && prev.id !== c.id) {
    // A new conversation: its seq numbers start again at 1, so the old
    // transcript goes (messages still queued stay).
    st.seq = 0;
    readSeq = 0;
    st.ar = 0;
    st.msgs = st.msgs.filter((m) => m.q);
    for (const k in nodes) delete nodes[k];
    log.replaceChildren(hi, typing, fb);
    for (const m of st.msgs) render(m);
  }
  st.conv = c as unknown as Conv;
  if (c.status !== 'waiting') queueText = '';
  agentRead(c.agent_read);
  save();
  label();
}

/** agentRead takes a read receipt of support's, which only moves forward;
 * the caller saves. */
function agentRead(seq: unknown): void {
  const n = Number(seq) || 0;
  if (n <= (st.ar || 0)) return;
  st.ar = n;
  receipt();
}

function frame(f: Obj): void {
  switch (f.type) {
    case 'welcome': {
      st.tok = str(f.token) || st.tok;
      ready = wasReady = true;
      tries = 0;
      agentsOnline = f.agents_online !== false;
      const s = isObj(f.site) ? f.site : {};
      receipts = s.read_receipts !== false;
      if (isObj(s.strings)) for (const k in s.strings) if (typeof s.strings[k] === 'string') S[k] = s.strings[k] as string;
      const th = s.theme;
      const color = typeof th === 'string' ? th : isObj(th) ? str(th.color) || str(th.primary) : '';
      if (/^#[0-9a-f]{6}$/i.test(color)) {
        host.style.setProperty('--c', color);
        host.style.setProperty('--f', ink(color));
      }
      if (f.conversation) setConv(f.conversation);
      receipt();
      save();
      label();
      if (identity) send({ type: 'identify', identity });
      if (Object.keys(attrs).length) send({ type: 'context', attributes: attrs });
      for (const m of st.out) send({ type: 'message', client_id: m.cid, text: m.text });
      flush();
      if (!announced) {
        announced = true;
        emit('ready');
      }
      break;
    }
    case 'ack': {
      const m = st.msgs.find((x) => x.cid === f.client_id);
      if (!st.conv && f.conversation_id) setConv({ id: f.conversation_id, ref: f.ref, status: 'waiting' });
      if (m) addMsg({ client_id: m.cid, seq: f.seq, text: m.text, author: { kind: 'visitor' } });
      break;
    }
    case 'message':
      if (isObj(f.message)) addMsg(f.message);
      break;
    case 'conversation':
      setConv(f.conversation);
      break;
    case 'queue': {
      const eta = Math.max(1, Math.round(Number(f.eta_seconds) / 60));
      queueText = T('queue', { position: f.position, eta });
      status();
      break;
    }
    case 'read':
      if (f.reader === 'agent') {
        agentRead(f.seq);
        save();
      }
      break;
    case 'typing':
      typing.hidden = !f.typing;
      clearTimeout(agentTypingT);
      if (f.typing) agentTypingT = W.setTimeout(() => (typing.hidden = true), 8000);
      log.scrollTop = log.scrollHeight;
      break;
    case 'offer': {
      // An offer comes again, same ID, after the server lost broker
      // traffic; it was shown (or answered) once already.
      if (isOpen || (st.decl && now() - st.decl < 10 * 60000) || str(f.offer_id) === offerId) break;
      offerId = str(f.offer_id);
      offerMode = str(f.mode);
      const text = str(f.text);
      showOffer(text);
      emit('offer', { text, rules: f.rules, mode: offerMode });
      break;
    }
    case 'error': {
      const code = str(f.code);
      if (code === 'bad_token') {
        st = { seq: 0, msgs: [], out: st.out, consent: st.consent };
        save();
        if (ws) ws.close();
      } else if (f.client_id && !f.retryable) {
        // The server refused this message for good (too long, invalid).
        st.out = st.out.filter((x) => x.cid !== f.client_id);
        save();
      }
      emit('error', { code });
      break;
    }
  }
}

// ---------------------------------------------------------- the transport

function send(o: Obj): boolean {
  if (!ready || !ws) return false;
  try {
    ws.send(JSON.stringify(o));
    return true;
  } catch (e) {
    return false;
  }
}

function device(): { kind: string; w: number; h: number } {
  const touch = 'ontouchstart' in W;
  const w = screen.width;
  return { kind: touch ? (w < 768 ? 'mobile' : 'tablet') : 'desktop', w, h: screen.height };
}

function connect(): void {
  clearTimeout(retryT);
  if (!site) return;
  let s: WebSocket;
  try {
    s = ws = new WebSocket(origin.replace(/^http/, 'ws') + '/ws/visitor?site=' + encodeURIComponent(site));
  } catch (e) {
    retry();
    return;
  }
  s.onopen = safe(() => {
    const hello: Obj = { type: 'hello', page: C.pageInfo(), locale: navigator.language, device: device() };
    if (st.tok) hello.token = st.tok;
    if (st.seq) hello.last_seq = st.seq;
    s.send(JSON.stringify(hello));
  });
  s.onmessage = safe((e: MessageEvent) => {
    if (s === ws) frame(JSON.parse(e.data));
  });
  s.onclose = safe(() => {
    if (s !== ws) return;
    ws = null;
    ready = false;
    offline.hidden = view === 'seen';
    if (wasReady) {
      wasReady = false;
      emit('error', { code: 'disconnected' });
    }
    retry();
  });
}

/** Capped exponential backoff with jitter: 0.25–0.5 s, then doubling to
 * 15–30 s. */
function retry(): void {
  if (!site) return;
  const d = Math.min(30000, 500 * Math.pow(2, tries++));
  retryT = W.setTimeout(connect, d / 2 + (Math.random() * d) / 2);
}

function queueEvent(e: C.Ev): void {
  evq.push(e);
  if (evq.length > 1000) evq.shift();
  if (!flushT) flushT = W.setTimeout(flush, 1000);
}

function flush(): void {
  clearTimeout(flushT);
  flushT = 0;
  while (evq.length && ready) {
    // At most 200 events and well under the 64 KiB frame limit.
    let n = Math.min(200, evq.length);
    let frame = '';
    while ((frame = JSON.stringify({ type: 'events', events: evq.slice(0, n) })).length > 60000 && n > 1) n >>= 1;
    if (!ws) return;
    try {
      ws.send(frame);
    } catch (e) {
      return;
    }
    evq.splice(0, n);
  }
}

/** On page hide: the socket if open, else one keepalive request. */
function flushHidden(): void {
  flush();
  if (!evq.length) return;
  const body = JSON.stringify({ token: st.tok, events: evq.splice(0, 200) });
  try {
    rawFetch(origin + '/api/v1/events?site=' + encodeURIComponent(site), { method: 'POST', body, keepalive: true, mode: 'no-cors', credentials: 'omit', headers: { 'Content-Type': 'text/plain' } }).catch(() => {});
  } catch (e) {
    /* nothing more to try */
  }
}

// ---------------------------------------------------------- the snippet API

const calls: Record<string, (...a: unknown[]) => void> = {
  identify(id) {
    if (!isObj(id) || typeof id.id !== 'string' || !id.id) return warn("lifeline('identify', {id, name?, email?, hash?, attributes?}) needs a string id");
    identity = {};
    for (const k of ['id', 'name', 'email', 'hash']) if (typeof id[k] === 'string') identity[k] = id[k];
    if (isObj(id.attributes)) identity.attributes = strings(id.attributes);
    send({ type: 'identify', identity });
  },
  context(a) {
    if (!isObj(a)) return warn("lifeline('context', {key: 'value'}) needs an object");
    Object.assign(attrs, strings(a));
    send({ type: 'context', attributes: attrs });
  },
  track(name, props) {
    if (typeof name !== 'string' || !name) return warn("lifeline('track', name, props?) needs a name");
    C.track(name, isObj(props) ? props : undefined);
  },
  error(e) {
    const msg = e instanceof Error ? e.message : typeof e === 'string' ? e : '';
    if (!msg) return warn("lifeline('error', message) needs a message or an Error");
    C.report(msg);
  },
  open,
  close,
  consent(c) {
    if (!isObj(c) || typeof c.signals !== 'boolean') return warn("lifeline('consent', {signals: true|false}) needs a boolean");
    st.consent = c.signals;
    C.setSignals(c.signals);
    if (!c.signals) evq = [];
    save();
  },
  on(name, fn) {
    if (typeof name !== 'string' || typeof fn !== 'function') return warn("lifeline('on', name, fn) needs an event name and a function");
    on(name, fn as (d: unknown) => void);
  },
  shutdown() {
    identity = null;
    attrs = {};
    st = { seq: 0, msgs: [], out: [], consent: st.consent };
    save();
    for (const k in nodes) delete nodes[k];
    log.replaceChildren(hi, typing, fb);
    close();
    hideOffer();
    const s = ws;
    ws = null;
    ready = false;
    if (s) s.close();
    connect();
  },
};

function strings(o: Obj): Obj {
  const r: Obj = {};
  for (const k in o) if (o[k] != null) r[k.slice(0, 64)] = String(o[k]).slice(0, 500);
  return r;
}

function call(args: ArrayLike<unknown>): void {
  const name = args[0];
  const f = typeof name === 'string' && Object.prototype.hasOwnProperty.call(calls, name) ? calls[name] : null;
  if (!f) return warn('unknown call ' + JSON.stringify(name) + '; known: ' + Object.keys(calls).join(', '));
  f(...Array.prototype.slice.call(args, 1));
}

/** Starts the widget from its <script data-site> tag and replaces the
 * snippet's stub, replaying the calls it queued. */
export function boot(): void {
  const prev = (W as unknown as { lifeline?: Stub }).lifeline;
  if (prev && prev.loaded) return; // loaded twice: the first copy runs
  const el = (D.currentScript || D.querySelector('script[data-site]')) as HTMLScriptElement | null;
  site = (el && el.getAttribute('data-site')) || '';
  if (!el || !site) warn('the <script> tag needs data-site="SITE_KEY"; chat is off');
  origin = el ? new URL(el.src || '/', location.href).origin : location.origin;
  allowParams(((el && el.getAttribute('data-allow-params')) || '').split(/[\s,]+/).filter(Boolean));
  key = 'lifeline:' + site;
  const saved = store.get(key) as Partial<State>;
  st = { seq: Number(saved.seq) || 0, msgs: Array.isArray(saved.msgs) ? saved.msgs : [], out: Array.isArray(saved.out) ? saved.out : [], tok: saved.tok, conv: saved.conv, consent: saved.consent, decl: saved.decl, ar: Number(saved.ar) || 0 };
  rawFetch = W.fetch;
  defineElement();
  buildUI();
  C.setSink(queueEvent);
  if (st.consent === false) C.setSignals(false);
  const api: Stub = function lifeline() {
    // eslint-disable-next-line prefer-rest-params
    safe(call)(arguments);
  };
  api.loaded = true;
  const q = (prev && prev.q) || [];
  (W as unknown as { lifeline: Stub }).lifeline = api;
  for (let i = 0; i < q.length; i++) safe(call)(q[i]);
  C.start(origin, host, safe(flushHidden));
  try {
    bc = new BroadcastChannel(key);
    bc.onmessage = safe((e: MessageEvent) => {
      const d = e.data;
      if (isObj(d.m)) addMsg(d.m, true);
      if (typeof d.read === 'number' && d.read >= st.seq) setUnread(0);
    });
  } catch (e) {
    /* no BroadcastChannel: the server echo still syncs tabs */
  }
  D.addEventListener('visibilitychange', safe(markRead));
  W.setInterval(() => send({ type: 'ping' }), 25000);
  connect();
}
