// Agent assist above the composer: the playbooks' best replies for the
// open conversation and their one-click actions (docs/assist.md). A reply
// is inserted into the composer for editing, never sent by itself.

import { api } from "./api";
import { h, replace, toast } from "./dom";
import type { Visitor } from "./types";

/** AssistItem is a filled suggestion or action. */
export interface AssistItem {
  id: string;
  playbook: string;
  title: string;
  kind: string; // "reply", "link", "note", "tag", "transfer", "webhook"
  text?: string;
  label?: string;
  url?: string;
  confirm?: string;
  tag?: string;
  target?: string;
  reason?: string;
  specificity: number;
  score: number;
  missing?: string[];
}

export interface AssistResult {
  suggestions: AssistItem[];
  actions: AssistItem[];
  hidden?: AssistItem[];
  matched: string[];
}

interface ActionResult {
  url?: string;
  note?: string;
  tags?: string[];
}

/** SHOWN is how many replies the panel offers at once. */
const SHOWN = 3;

export class AssistPanel {
  el = h("div", { class: "assist", "aria-label": "Suggested next steps", hidden: true });
  private conv = "";
  private findings = ""; // the visitor's findings when last loaded
  private result: AssistResult | null = null;
  private loading = 0;

  constructor(private textarea: HTMLTextAreaElement) {}

  /** show loads the suggestions when another conversation opens. */
  show(convID: string): void {
    if (convID === this.conv) return;
    this.conv = convID;
    this.findings = "";
    this.result = null;
    this.render();
    void this.load();
  }

  /** context reloads the suggestions when the visitor has a new finding. */
  context(convID: string, v: Visitor): void {
    if (convID !== this.conv) return;
    const sig = (v.context?.findings ?? []).filter((f) => !f.shadow).map((f) => f.rule + "@" + f.at).join(",");
    if (this.findings === "") {
      this.findings = sig || "-";
      return;
    }
    if (sig !== this.findings && sig) {
      this.findings = sig;
      void this.load();
    }
  }

  /** insertTop inserts the best reply into an empty composer; false if there is none. */
  insertTop(): boolean {
    const first = this.result?.suggestions[0];
    if (!first || this.textarea.value.trim() !== "") return false;
    this.insert(first);
    return true;
  }

  private async load(): Promise<void> {
    const id = this.conv;
    const n = ++this.loading;
    try {
      const r = await api<AssistResult>("GET", `/conversations/${encodeURIComponent(id)}/suggestions`);
      if (id !== this.conv || n !== this.loading) return;
      this.result = r;
    } catch {
      if (id !== this.conv) return;
      this.result = null; // assist is a help, not a blocker: stay quiet
    }
    this.render();
  }

  private render(): void {
    const r = this.result;
    const replies = r?.suggestions.slice(0, SHOWN) ?? [];
    const actions = r?.actions ?? [];
    this.el.hidden = !replies.length && !actions.length;
    if (this.el.hidden) {
      replace(this.el);
      return;
    }
    const reason = replies[0]?.reason || actions[0]?.reason;
    replace(this.el,
      h("div", { class: "assist-head" },
        h("span", { class: "assist-title" }, "Suggested"),
        reason ? h("span", { class: "hint" }, " · " + reason) : null,
        replies.length ? h("span", { class: "hint assist-keys" }, "Tab inserts the first") : null),
      replies.length ? h("div", { class: "assist-replies", role: "list" }, replies.map((s, i) =>
        h("div", { class: "assist-reply" + (i === 0 ? " first" : ""), role: "listitem", "data-item": s.id },
          h("button", { class: "assist-insert", "data-action": "insert-suggestion", title: `${s.title} — insert for editing`, onclick: () => this.insert(s) }, s.text ?? ""),
          h("button", { class: "link assist-x", "data-action": "unhelpful", title: "Not helpful: don't suggest it here again", "aria-label": "Not helpful", onclick: () => void this.unhelpful(s) }, "✕"),
        ))) : null,
      actions.length ? h("div", { class: "assist-actions" }, actions.map((a) =>
        h("button", { class: "assist-action", "data-action": "run-action", "data-item": a.id, title: a.title, onclick: () => this.confirm(a) }, a.label ?? a.id))) : null,
    );
  }

  private insert(s: AssistItem): void {
    this.textarea.value = s.text ?? "";
    // The composer's own input handler keeps the draft.
    this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
    this.textarea.focus();
    this.textarea.setSelectionRange(this.textarea.value.length, this.textarea.value.length);
    void api("POST", `/conversations/${encodeURIComponent(this.conv)}/suggestions/${encodeURIComponent(s.id)}/used`).catch(() => {});
  }

  private async unhelpful(s: AssistItem): Promise<void> {
    if (this.result) this.result.suggestions = this.result.suggestions.filter((x) => x.id !== s.id);
    this.render();
    try {
      await api("POST", `/conversations/${encodeURIComponent(this.conv)}/suggestions/${encodeURIComponent(s.id)}/unhelpful`);
    } catch (e) {
      toast((e as Error).message, "error");
    }
  }

  /** confirm asks before running an action: one click, then this question. */
  private confirm(a: AssistItem): void {
    const conv = this.conv;
    const run = h("button", { class: "primary", "data-action": "confirm-action", autofocus: true }, a.label ?? "Run");
    const d = h("dialog", { class: "modal assist-confirm", "aria-label": a.label ?? "Run action" },
      h("header", null, h("h2", null, a.label ?? "Run action")),
      h("p", null, a.confirm || `${a.label}?`),
      a.kind === "link" && a.url ? h("p", { class: "hint url" }, a.url) : null,
      h("div", { class: "buttons" },
        h("button", { "data-action": "cancel-action", onclick: () => d.close() }, "Cancel"),
        run),
    );
    run.addEventListener("click", () => {
      d.close();
      void this.run(conv, a);
    });
    document.body.appendChild(d);
    d.addEventListener("close", () => d.remove());
    d.showModal();
  }

  private async run(conv: string, a: AssistItem): Promise<void> {
    try {
      const r = await api<ActionResult>("POST", `/conversations/${encodeURIComponent(conv)}/actions/${encodeURIComponent(a.id)}/run`);
      if (r.url) window.open(r.url, "_blank", "noopener,noreferrer");
      toast(r.note ?? `${a.label}: done`);
    } catch (e) {
      toast((e as Error).message, "error");
    }
  }
}
