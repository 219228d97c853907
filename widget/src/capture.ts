// Behaviour capture (docs/protocol.md, "Behaviour events"). Every listener
// is passive and in the capture phase, does a few microseconds of work and
// records facts, never values: no keystrokes, no field contents, no bodies.

import { D, W, cleanPath, hash, now, perf, redact, selector, safe, type Obj } from './util';

/** A behaviour event: t (ms since epoch) and k (kind) plus its fields. */
export type Ev = Obj & { t: number; k: string };

/** What the widget captured that support will see ("What support can see"). */
export const seen = { pages: [] as string[], errors: [] as string[], requests: [] as string[] };

let sink: (e: Ev) => void = () => {};
let enabled = true;
let own = ''; // the widget server's origin: its traffic is not captured

/** Sets where captured events go. */
export const setSink = (f: (e: Ev) => void): void => {
  sink = f;
};

/** Turns capture on or off (consent). Off drops events at the door. */
export const setSignals = (on: boolean): void => {
  enabled = on;
};

const keep = (list: string[], s: string): void => {
  list.push(s);
  if (list.length > 20) list.shift();
};

function push(e: Obj & { k: string }, hold?: boolean): Ev | undefined {
  if (!enabled) return undefined;
  const ev = e as Ev;
  ev.t = ev.t || now();
  if (!hold) sink(ev);
  return ev;
}

// ---- errors: fingerprinted, at most 5 per fingerprint per page, and a token
// bucket of 10 with one refill a second so an error loop costs nothing.
let tokens = 10;
let refilled = now();
let perFp: Record<string, number> = {};

function allowError(): boolean {
  const t = now();
  tokens = Math.min(10, tokens + (t - refilled) / 1000);
  refilled = t;
  if (tokens < 1) return false;
  tokens--;
  return true;
}

const ext = /^(chrome|moz|safari|safari-web)-extension:|^webkit-masked-url:/;

/** Records an error from an ErrorEvent or a rejection reason. */
function onError(msg: string, src: string, line: number, col: number, stack: string): void {
  if (!enabled || !msg || msg === 'Script error.' || msg === 'Script error') return;
  const top = (stack.split('\n').find((l) => /:\d+:\d+/.test(l) && !/^\w*Error\b/.test(l)) || src + ':' + line + ':' + col).trim();
  if (ext.test(src) || /(chrome|moz|safari)-extension:/.test(top)) return;
  const fp = hash(msg + '|' + top);
  const n = (perFp[fp] = (perFp[fp] || 0) + 1);
  if (n > 5 || !allowError()) return;
  const e: Ev = { t: now(), k: 'error', msg: redact(msg), fp } as Ev;
  if (src) {
    e.src = cleanPath(src);
    e.line = line;
    e.col = col;
  }
  keep(seen.errors, e.msg as string);
  push(e);
}

/** lifeline('error', …): a handled error the site reports. */
export function report(msg: string): void {
  if (!enabled || !allowError()) return;
  const m = redact(msg);
  keep(seen.errors, m);
  push({ k: 'report', msg: m });
}

/** lifeline('track', …). */
export function track(name: string, props?: Obj): void {
  const e: Obj & { k: string } = { k: 'track', name: name.slice(0, 100) };
  if (props) {
    const p: Obj = {};
    let n = 0;
    for (const k in props) if (n++ < 20) p[k.slice(0, 64)] = String(props[k]).slice(0, 200);
    e.props = p;
  }
  push(e);
}

// ---- requests: failures only.
function request(method: string, url: string, status: number, t0: number): void {
  if (!enabled || (status && status < 400)) return;
  // The widget's own endpoints are not the site's traffic. (The site itself
  // may share the origin, as /demo does, so only these paths are skipped.)
  try {
    const u = new URL(url, location.href);
    if (u.origin === own && /^\/(ws\/|api\/v1\/events|widget\.js)/.test(u.pathname)) return;
  } catch (e) {
    return;
  }
  const path = cleanPath(url);
  const e = { k: 'request', method: (method || 'GET').toUpperCase(), path, status, dur: Math.round(perf() - t0) };
  keep(seen.requests, e.method + ' ' + path + ' → ' + (status || 'network error'));
  push(e);
}

function wrapFetch(): void {
  const orig = W.fetch;
  if (!orig) return;
  W.fetch = function (this: unknown, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const t0 = perf();
    const p = orig.call(W, input, init);
    safe(() => {
      const req = typeof input === 'object' && 'method' in input ? (input as Request) : null;
      const url = req ? req.url : String(input);
      const method = (init && init.method) || (req && req.method) || 'GET';
      p.then(
        (r) => r.status >= 400 && request(method, url, r.status, t0),
        (err) => err && err.name !== 'AbortError' && request(method, url, 0, t0),
      );
    })();
    return p;
  };
}

function wrapXHR(): void {
  const X = W.XMLHttpRequest;
  if (!X) return;
  const P = X.prototype;
  const open = P.open;
  const send = P.send;
  const info = new WeakMap<XMLHttpRequest, [string, string]>();
  P.open = function (this: XMLHttpRequest, m: string, u: string | URL) {
    info.set(this, [m, String(u)]);
    // eslint-disable-next-line prefer-rest-params
    return (open as (...a: unknown[]) => void).apply(this, arguments as unknown as unknown[]);
  } as typeof P.open;
  P.send = function (this: XMLHttpRequest, body?: Document | XMLHttpRequestBodyInit | null) {
    const i = info.get(this);
    if (i) {
      const t0 = perf();
      this.addEventListener('loadend', () => request(i[0], i[1], this.status, t0));
    }
    return send.call(this, body);
  };
}

// ---- forms: field identity and true ValidityState flags, never the value
// or the browser's validation message.
const flags = ['valueMissing', 'typeMismatch', 'patternMismatch', 'tooLong', 'tooShort', 'rangeUnderflow', 'rangeOverflow', 'stepMismatch', 'badInput', 'customError'] as const;
const formName = (f: Element | null): string => (f ? f.getAttribute('id') || f.getAttribute('name') || selector(f) : '');
let failedForms: Element[] = [];

function onInvalid(ev: Event): void {
  const el = ev.target as HTMLInputElement;
  if (!el || !el.validity) return;
  const v = el.validity;
  const form = el.form;
  push({
    k: 'invalid',
    form: formName(form),
    field: el.getAttribute('name') || el.getAttribute('id') || '',
    ftype: el.type || el.localName,
    flags: flags.filter((f) => v[f]),
  });
  // A submit blocked by constraint validation fires no submit event: record
  // the attempt once per form per task.
  if (form && failedForms.indexOf(form) < 0) {
    failedForms.push(form);
    if (failedForms.length === 1) setTimeout(() => (failedForms = []));
    push({ k: 'submit', form: formName(form), ok: false });
  }
}

function onSubmit(ev: Event): void {
  const form = ev.target as Element;
  const e = push({ k: 'submit', form: formName(form), ok: true });
  // Learn after the page's own handlers whether the submit went through.
  if (e) setTimeout(() => (e.ok = !ev.defaultPrevented));
}

// ---- clicks, rage and dead clicks.
const interactive = 'a,button,input,select,textarea,label,summary,[role=button],[role=link],[role=tab],[role=menuitem],[role=checkbox],[onclick],[tabindex]';
const textish = /^(text|email|password|search|tel|url|number|range|date|datetime-local|month|week|time)$/;
let host: Element | null = null; // the widget's own element
let burst: { x: number; y: number; last: number; n: number; ev?: Ev } | null = null;
let lastChange = 0; // last DOM mutation, scroll, selection change or navigation
let pending: Array<[Ev, number]> = [];
let deadTimer = 0;
let mo: MutationObserver | null = null;

const changed = (): void => {
  lastChange = perf();
};

function stepper(el: Element): boolean {
  if (el.closest('[role=spinbutton],input[type=number],input[type=range]')) return true;
  const b = el.closest('button,[role=button]');
  if (!b) return false;
  const label = (b.getAttribute('aria-label') || b.textContent || '').trim().toLowerCase();
  return /^[+\-−–‹›<>]$|^(increase|decrease|increment|decrement|add one|remove one|next|previous|prev)\b/.test(label);
}

function checkDead(): void {
  deadTimer = 0;
  const t = perf();
  pending = pending.filter(([e, at]) => {
    if (t - at < 2500) return true;
    if (lastChange < at) e.dead = true;
    if (enabled) sink(e);
    return false;
  });
  if (pending.length) deadTimer = W.setTimeout(checkDead, 2500 - (t - pending[0][1]) + 10);
  else if (mo) mo.disconnect();
}

function onClick(ev: MouseEvent): void {
  if (!enabled) return;
  const el = ev.target as Element;
  if (!el || !el.closest || el === host) return;
  if (el.closest('.lifeline-ignore,[data-lifeline-ignore]')) return;
  const x = Math.round(ev.clientX);
  const y = Math.round(ev.clientY);
  const tag = el.localName;
  const skip = tag === 'textarea' || (tag === 'input' && textish.test((el as HTMLInputElement).type)) || (el as HTMLElement).isContentEditable || stepper(el);
  // Clicks on interactive targets wait 2.5 s for the verdict dead or not.
  const held = !skip && !!el.closest(interactive);
  const e = push({ k: 'click', sel: selector(el), x, y }, held);
  if (!e) return;
  const t = perf();
  // Rage: three or more clicks, each within 1 s of the last, within 30 px
  // (Manhattan) of where the burst began. Reported once per burst, on the
  // third click's event, with the count updated while it grows.
  if (burst && t - burst.last <= 1000 && Math.abs(x - burst.x) + Math.abs(y - burst.y) <= 30) {
    burst.n++;
    burst.last = t;
    if (!skip && burst.n >= 3) {
      burst.ev = burst.ev || e;
      burst.ev.rage = burst.n;
    }
  } else {
    burst = { x, y, last: t, n: 1 };
  }
  // Dead: an interactive target after which nothing changed for 2.5 s.
  if (held) {
    if (!mo) mo = new MutationObserver(changed);
    if (!pending.length) mo.observe(D.documentElement, { childList: true, subtree: true, attributes: true, characterData: true });
    pending.push([e, t]);
    if (!deadTimer) deadTimer = W.setTimeout(checkDead, 2510);
  }
}

// ---- pages: loads, history API and popstate.
let lastPath = '';

/** Records a page view when the path changed (or on the first call). */
export function page(): void {
  const path = cleanPath(location.href);
  if (path === lastPath) return;
  changed();
  const ev: Obj & { k: string } = { k: 'page', path, title: D.title.slice(0, 200) };
  if (lastPath) ev.ref = lastPath;
  else if (D.referrer) ev.ref = cleanPath(D.referrer);
  lastPath = path;
  perFp = {};
  keep(seen.pages, path);
  push(ev);
}

/** The current cleaned path, for hello.page. */
export const pageInfo = (): Obj => ({ path: cleanPath(location.href), title: D.title.slice(0, 200) });

function wrapHistory(): void {
  const H = W.history;
  for (const m of ['pushState', 'replaceState'] as const) {
    const orig = H[m];
    H[m] = function (this: History, ...a: [unknown, string, (string | URL | null)?]) {
      const r = orig.apply(this, a);
      safe(page)();
      return r;
    };
  }
}

// ---- visibility and idle.
let idle = false;
let lastInput = now();
const active = (): void => {
  lastInput = now();
  if (idle) {
    idle = false;
    push({ k: 'idle', idle: false });
  }
};

/** Starts capture. origin is the widget server's, el the widget's element. */
export function start(origin: string, el: Element, onHide: () => void): void {
  own = origin;
  host = el;
  const opt = { capture: true, passive: true };
  const add = (t: EventTarget, n: string, f: (e: never) => void): void => t.addEventListener(n, safe(f) as EventListener, opt);
  add(W, 'error', (e: ErrorEvent) => {
    if (e instanceof ErrorEvent) onError(e.message, e.filename || '', e.lineno || 0, e.colno || 0, (e.error && e.error.stack) || '');
  });
  add(W, 'unhandledrejection', (e: PromiseRejectionEvent) => {
    const r = e.reason;
    const msg = r instanceof Error ? r.name + ': ' + r.message : 'Unhandled rejection: ' + String(r);
    onError(msg, '', 0, 0, (r && r.stack) || '');
  });
  add(D, 'invalid', onInvalid);
  add(D, 'submit', onSubmit);
  add(D, 'click', onClick);
  add(W, 'popstate', page);
  add(W, 'scroll', changed);
  add(D, 'selectionchange', changed);
  for (const n of ['pointerdown', 'keydown', 'wheel', 'touchstart']) add(D, n, active);
  add(D, 'visibilitychange', () => {
    const visible = D.visibilityState === 'visible';
    push({ k: 'visibility', visible });
    if (!visible) {
      // A page being hidden may never come back: decide pending dead clicks
      // as "not dead" and flush everything now.
      for (const [ev] of pending) sink(ev);
      pending = [];
      onHide();
    }
  });
  W.setInterval(
    safe(() => {
      if (!idle && now() - lastInput > 30000) {
        idle = true;
        push({ k: 'idle', idle: true });
      }
    }),
    5000,
  );
  wrapFetch();
  wrapXHR();
  wrapHistory();
  try {
    new PerformanceObserver(
      safe((l: PerformanceObserverEntryList) => {
        for (const e of l.getEntries()) push({ k: 'longtask', dur: Math.round(e.duration) });
      }),
    ).observe({ type: 'longtask' });
  } catch (e) {
    /* longtask unsupported */
  }
  page();
}
