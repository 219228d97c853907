// The chat UI: one custom element, <lifeline-widget>, with an open shadow
// root holding all its markup and styles. Every string from a person or the
// server goes in with textContent, never as HTML.

import { css } from './style';
import { D, W, type Obj } from './util';

/** The widget's strings. The server's welcome.site.strings override them. */
export const S: Record<string, string> = {
  title: 'Support',
  subtitle: 'We usually reply in a few minutes.',
  away: 'We’re offline — we’ll reply by email.',
  welcome: 'Hi! Ask us anything — we’re happy to help.',
  placeholder: 'Write a message…',
  send: 'Send',
  open: 'Open support chat',
  close: 'Close support chat',
  offline: 'You’re offline — we’ll send your messages when the connection is back.',
  ref: 'Reference {ref}',
  queue: 'You’re #{position} in line · about {eta} min',
  agent: '{name} is here to help',
  typing: '{name} is typing',
  you: 'You',
  team: 'Support',
  sending: 'Sending…',
  read: 'Seen',
  solved: 'Did this solve it?',
  yes: 'Yes, thanks',
  no: 'No',
  thanks: 'Thanks for letting us know.',
  reopened: 'Sorry about that — we’re on it.',
  leaveTitle: 'We’re away right now',
  leaveBody: 'Leave a message and we’ll reply by email.',
  email: 'Your email',
  message: 'Your message',
  leaveSend: 'Send message',
  left: 'Thanks! We’ll reply to {email}.',
  accept: 'Chat now',
  acceptMessage: 'Leave a message',
  decline: 'No thanks',
  seen: 'What support can see',
  seenIntro: 'This is everything our team sees about this visit. Typed text and passwords are never collected.',
  back: 'Back to chat',
  identity: 'Identity',
  verified: 'signed by this site',
  unverified: 'not verified',
  anonymous: 'Anonymous visitor',
  attributes: 'Details',
  pages: 'Pages visited',
  errors: 'Errors',
  requests: 'Failed requests',
  device: 'Device',
  locale: 'Language',
  none: 'None',
  signalsOff: 'Activity capture is off for this site',
};

/** Fills {name} placeholders. */
export const T = (k: string, v: Obj = {}): string => (S[k] || k).replace(/\{(\w+)\}/g, (_, n) => String(v[n] ?? ''));

type Kid = Node | string | null | undefined | false;

/** Makes an element; attrs are attributes except "text" (textContent). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: Kid[]): HTMLElementTagNameMap[K] {
  const el = D.createElement(tag);
  for (const k in attrs) {
    if (k === 'text') el.textContent = attrs[k];
    else el.setAttribute(k, attrs[k]);
  }
  for (const c of kids) if (c) el.append(c);
  return el;
}

const icons: Record<string, string> = {
  chat: 'M5 3h14a3 3 0 0 1 3 3v9a3 3 0 0 1-3 3H10l-5 4v-4a3 3 0 0 1-3-3V6a3 3 0 0 1 3-3z',
  x: 'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z',
  down: 'M5.4 8.6 12 15.2l6.6-6.6L20 10l-8 8-8-8z',
  eye: 'M12 5c5.2 0 9 4.4 10 7-1 2.6-4.8 7-10 7S3 14.6 2 12c1-2.6 4.8-7 10-7zm0 3.2a3.8 3.8 0 1 0 0 7.6 3.8 3.8 0 0 0 0-7.6z',
  send: 'M3 20.5 21.5 12 3 3.5v6.7l12.5 1.8L3 13.8z',
};

export function icon(name: string): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = D.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = D.createElementNS(ns, 'path');
  p.setAttribute('d', icons[name]);
  svg.append(p);
  return svg;
}

/** Defines <lifeline-widget> once, even if the script is loaded twice. */
export function defineElement(): void {
  if (!customElements.get('lifeline-widget')) customElements.define('lifeline-widget', class extends HTMLElement {});
}

/** Adds the styles to a shadow root: a constructed stylesheet where
 * supported (allowed under a strict CSP), else a <style> element. */
export function addStyles(root: ShadowRoot): void {
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    root.append(h('style', { text: css }));
  }
}

const focusable = 'button:not([disabled]),[href],input:not([disabled]),textarea:not([disabled]),select,[tabindex]:not([tabindex="-1"])';

/** Keeps Tab and Shift-Tab inside box; Escape calls onEscape. */
export function trapFocus(root: ShadowRoot, box: HTMLElement, onEscape: () => void): void {
  box.addEventListener('keydown', (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      onEscape();
      return;
    }
    if (e.key !== 'Tab') return;
    const list = Array.from(box.querySelectorAll<HTMLElement>(focusable)).filter((el) => el.offsetParent !== null || el === root.activeElement);
    if (!list.length) return;
    const first = list[0];
    const last = list[list.length - 1];
    const cur = root.activeElement;
    if (e.shiftKey && (cur === first || !box.contains(cur))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (cur === last || !box.contains(cur))) {
      e.preventDefault();
      first.focus();
    }
  });
}

/** Picks black or white text for a background, whichever has more contrast. */
export function ink(hex: string): string {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex);
  if (!m) return '#fff';
  const n = parseInt(m[1], 16);
  const lin = (c: number): number => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  };
  const L = 0.2126 * lin(n >> 16) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
  return (L + 0.05) / 0.05 > 1.05 / (L + 0.05) ? '#101828' : '#fff';
}

export const reducedMotion = (): boolean => !!W.matchMedia && W.matchMedia('(prefers-reduced-motion: reduce)').matches;
