// Small helpers shared by the widget's parts. Nothing here touches the host
// page's globals.

/** A plain JSON object. */
export type Obj = Record<string, unknown>;

export const W = window;
export const D = document;
export const now = (): number => Date.now();
export const perf = (): number => performance.now();

/** One clear console warning for a misuse of the API; never throws. */
export const warn = (m: string): void => console.warn('[lifeline] ' + m);

/** Wraps an entry point so a bug in the widget never reaches the host page. */
export function safe<A extends unknown[], R>(f: (...a: A) => R): (...a: A) => R | undefined {
  return (...a: A): R | undefined => {
    try {
      return f(...a);
    } catch (e) {
      console.error('[lifeline]', e);
      return undefined;
    }
  };
}

export const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Removes what must never leave the browser from free text: email
 * addresses, runs of six or more digits (card, phone and account numbers,
 * spaces and dashes allowed between them) and long token-like strings. */
export function redact(s: unknown, max = 300): string {
  return String(s)
    .replace(/[^\s@<>()"']+@[^\s@<>()"']+\.[a-z]{2,}/gi, '[email]')
    .replace(/[\w+/=-]{20,}/g, (t) => (/\d/.test(t) && /[a-z]/i.test(t) ? '[token]' : t))
    .replace(/\d(?:[ -]?\d){5,}/g, '[number]')
    .slice(0, max);
}

/** FNV-1a, 32 bits, in base 36: a short stable fingerprint. */
export function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/** A random UUID v4 (crypto.randomUUID where available). */
export function uuid(): string {
  const c = W.crypto;
  if (c && c.randomUUID) return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
  return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
}

let allow: string[] = [];
/** Sets the query parameter names that may be kept in paths. */
export const allowParams = (names: string[]): void => {
  allow = names;
};

const idSeg = /^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|(?=.*\d)[\w-]{20,})$/i;

/** Makes a URL safe to send: no fragment, no query except allow-listed
 * parameters, and numeric, UUID and token segments templated as ":id"
 * (/orders/123 → /orders/:id). Other origins keep their host ("//api.x.com/…"). */
export function cleanPath(u: string): string {
  let url: URL;
  try {
    url = new URL(u, location.href);
  } catch (e) {
    return '';
  }
  let p = url.pathname
    .split('/')
    .map((s) => (idSeg.test(s) ? ':id' : s))
    .join('/');
  if (url.origin !== location.origin) p = '//' + url.host + p;
  const q: string[] = [];
  for (const k of allow) {
    const v = url.searchParams.get(k);
    if (v !== null) q.push(k + '=' + encodeURIComponent(v.slice(0, 64)));
  }
  return p + (q.length ? '?' + q.join('&') : '');
}

/** A short, stable CSS selector for an element: #id or [data-testid] when
 * present, else tag and up to two classes, at most four levels deep. */
export function selector(el: Element | null): string {
  const out: string[] = [];
  for (let d = 0; el && d < 4 && el !== D.documentElement; d++, el = el.parentElement) {
    const id = el.id;
    if (id && !/\d{3}/.test(id)) {
      out.unshift('#' + id);
      break;
    }
    const tid = el.getAttribute('data-testid');
    if (tid) {
      out.unshift('[data-testid="' + tid + '"]');
      break;
    }
    let s = el.localName;
    const cl = el.classList;
    for (let i = 0, n = 0; i < cl.length && n < 2; i++) {
      if (!/\d{3}|^(css|sc|jsx)-/.test(cl[i])) {
        s += '.' + cl[i];
        n++;
      }
    }
    out.unshift(s);
  }
  return out.join('>').slice(0, 120);
}

/** Hooks that the host page subscribed to with lifeline('on', name, fn). */
const hooks: Record<string, Array<(d: unknown) => void>> = {};

export function on(name: string, fn: (d: unknown) => void): void {
  (hooks[name] = hooks[name] || []).push(fn);
}

/** Tells the host page: its lifeline('on') hooks and a window CustomEvent
 * named "lifeline:NAME". A hook that throws is reported, never rethrown. */
export function emit(name: string, detail?: unknown): void {
  for (const fn of hooks[name] || []) {
    try {
      fn(detail);
    } catch (e) {
      console.error('[lifeline] "' + name + '" handler threw', e);
    }
  }
  try {
    W.dispatchEvent(new CustomEvent('lifeline:' + name, { detail }));
  } catch (e) {
    /* very old browsers */
  }
}

/** localStorage that never throws (private mode, full quota, disabled). */
export const store = {
  get(k: string): Obj {
    try {
      const v = JSON.parse(localStorage.getItem(k) || '{}');
      return isObj(v) ? v : {};
    } catch (e) {
      return {};
    }
  },
  set(k: string, v: Obj): void {
    try {
      localStorage.setItem(k, JSON.stringify(v));
    } catch (e) {
      /* storage unavailable: the session still works, it just won't survive a reload */
    }
  },
};
