// The product team's Playbooks page: edit a site's playbooks (JSON, with
// the server's validation shown inline), preview them unsaved against a
// live or recent visitor's context, and see each item's use and resolution
// rates (docs/assist.md).

import { api, ApiError } from "./api";
import { h, replace, toast } from "./dom";
import type { AssistItem, AssistResult } from "./assist";
import type { Page, PageDeps } from "./pages";
import type { Conversation, Site, Visitor } from "./types";

interface StoredPlaybooks {
  playbooks: unknown;
  revision?: string;
  updated_at?: string;
  updated_by?: string;
  action_secret?: string;
}

interface StatRow {
  id: string;
  playbook: string;
  title: string;
  kind: string;
  text: string;
  shown: number;
  used: number;
  unhelpful: number;
  yes: number;
  no: number;
  failed?: number;
  use_rate: number;
  resolution_rate: number;
  score: number;
}

const STATS_MS = 10_000;
const pct = (f: number) => `${Math.round(f * 100)}%`;

export class PlaybooksPage implements Page {
  el = h("div", { class: "page playbooks" });
  private site = "";
  private editor = h("textarea", { class: "pb-json", spellcheck: "false", "aria-label": "Playbooks (JSON)" });
  private errors = h("ul", { class: "pb-errors error", "aria-live": "polite" });
  private meta = h("span", { class: "hint" });
  private secret = h("p", { class: "hint" });
  private who = h("select", { class: "pb-visitor", "aria-label": "Visitor to preview with" });
  private whoID = h("input", { class: "pb-visitor-id", placeholder: "or a visitor id", "aria-label": "Visitor id" });
  private preview = h("div", { class: "pb-preview" });
  private stats = h("div", { class: "pb-statsbox" });
  private timer = 0;
  private previewTimer = 0;
  private stopped = false;

  constructor(private deps: PageDeps) {
    void this.init();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.previewTimer);
  }

  private async init(): Promise<void> {
    const sites: Site[] = await this.deps.sites();
    this.site = sites[0]?.key ?? "";
    const sel = h("select", { "aria-label": "Site", class: "site-select" }, sites.map((s) => h("option", { value: s.key }, `${s.name || s.key} (${s.key})`)));
    sel.value = this.site;
    sel.addEventListener("change", () => {
      this.site = sel.value;
      void this.load();
    });
    this.editor.addEventListener("input", () => {
      clearTimeout(this.previewTimer);
      this.previewTimer = window.setTimeout(() => void this.runPreview(), 600);
    });
    this.who.addEventListener("change", () => void this.runPreview());
    this.whoID.addEventListener("change", () => void this.runPreview());
    replace(this.el,
      h("header", { class: "pagehead" }, h("h1", null, "Playbooks"), sites.length > 1 ? sel : null, this.meta),
      h("p", { class: "hint" }, "What agents are offered for each struggle: replies with placeholders like {{visitor.first_name}} and one-click actions. See docs/assist.md for the format."),
      h("div", { class: "pb-grid" },
        h("section", { class: "card" },
          h("h3", null, "Edit"),
          this.editor,
          this.errors,
          h("div", { class: "pb-bar" },
            h("button", { class: "primary", "data-action": "save-playbooks", onclick: () => void this.save() }, "Save"),
            h("button", { "data-action": "format-playbooks", onclick: () => this.format() }, "Format"),
            h("button", { class: "link", "data-action": "reload-playbooks", onclick: () => void this.load() }, "Discard changes")),
          this.secret),
        h("section", { class: "card" },
          h("h3", null, "Live preview"),
          h("div", { class: "pb-bar" }, this.who, this.whoID, h("button", { "data-action": "preview", onclick: () => void this.runPreview() }, "Preview")),
          this.preview)),
      h("section", { class: "card" }, h("h3", null, "Use and resolution"),
        h("p", { class: "hint" }, "Shown: conversations it was offered in. Used: inserted or run. Resolution: \u201cDid this solve it?\u201d yes among answered conversations where it was used."),
        this.stats),
    );
    await this.load();
    this.timer = window.setInterval(() => void this.loadStats(), STATS_MS);
  }

  private async load(): Promise<void> {
    if (!this.site) return;
    replace(this.errors);
    try {
      const r = await api<StoredPlaybooks>("GET", `/sites/${encodeURIComponent(this.site)}/playbooks`);
      this.editor.value = JSON.stringify(r.playbooks, null, 2);
      this.meta.textContent = r.revision ? `revision ${r.revision}` + (r.updated_by ? ` · by ${r.updated_by}` : "") : "";
      this.secret.textContent = r.action_secret ? `Webhook actions are signed with this site's action secret: ${r.action_secret}` : "";
    } catch (e) {
      replace(this.errors, h("li", null, (e as Error).message));
    }
    await Promise.all([this.loadVisitors(), this.loadStats()]);
    await this.runPreview();
  }

  private format(): void {
    try {
      this.editor.value = JSON.stringify(JSON.parse(this.editor.value), null, 2);
      replace(this.errors);
    } catch (e) {
      replace(this.errors, h("li", null, "JSON: " + (e as Error).message));
    }
  }

  /** parsed returns the editor's document, or shows why it is not JSON. */
  private parsed(): unknown | undefined {
    try {
      return JSON.parse(this.editor.value);
    } catch (e) {
      replace(this.errors, h("li", null, "JSON: " + (e as Error).message));
      return undefined;
    }
  }

  private showProblems(e: unknown): void {
    const msg = (e as Error).message;
    replace(this.errors, msg.split("\n").filter(Boolean).map((line) => h("li", { class: "field-error" }, line)));
  }

  private async save(): Promise<void> {
    const doc = this.parsed();
    if (doc === undefined) return;
    try {
      await api("PUT", `/sites/${encodeURIComponent(this.site)}/playbooks`, doc);
      replace(this.errors);
      toast("Playbooks saved; every node uses them within seconds.");
      await this.load();
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) this.showProblems(e);
      else toast((e as Error).message, "error");
    }
  }

  /** loadVisitors offers live visitors and those of recent conversations. */
  private async loadVisitors(): Promise<void> {
    const keep = this.who.value;
    const opts: HTMLOptionElement[] = [];
    const seen = new Set<string>();
    try {
      const live = await api<{ visitors: { visitor: Visitor; explanation?: string }[] }>("GET", `/visitors/live?site=${encodeURIComponent(this.site)}`);
      for (const l of live.visitors) {
        seen.add(l.visitor.id);
        opts.push(h("option", { value: l.visitor.id }, `Live: ${l.visitor.name || l.visitor.email || l.visitor.id}${l.explanation ? " — " + l.explanation : ""}`));
      }
    } catch {
      /* no detector on this server */
    }
    try {
      const r = await api<{ conversations: Conversation[] }>("GET", `/conversations?site=${encodeURIComponent(this.site)}&limit=30`);
      for (const c of r.conversations) {
        if (seen.has(c.visitor_id)) continue;
        seen.add(c.visitor_id);
        opts.push(h("option", { value: c.visitor_id }, `${c.ref} (${c.status})${c.explanation ? " — " + c.explanation : ""}`));
      }
    } catch {
      /* nothing recent */
    }
    replace(this.who, opts.length ? opts : h("option", { value: "" }, "No visitors yet"));
    if (keep && seen.has(keep)) this.who.value = keep;
  }

  private async runPreview(): Promise<void> {
    if (this.stopped) return;
    const visitor = this.whoID.value.trim() || this.who.value;
    if (!visitor) {
      replace(this.preview, h("p", { class: "empty" }, "Pick a visitor to preview with."));
      return;
    }
    const doc = this.parsed();
    if (doc === undefined) return;
    try {
      const r = await api<AssistResult>("POST", `/sites/${encodeURIComponent(this.site)}/playbooks/preview`, { visitor_id: visitor, playbooks: doc });
      replace(this.errors);
      this.renderPreview(r);
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) this.showProblems(e);
      else replace(this.preview, h("p", { class: "error" }, (e as Error).message));
    }
  }

  private renderPreview(r: AssistResult): void {
    const item = (it: AssistItem, hidden = false) => h("div", { class: "item" + (hidden ? " hidden-item" : ""), "data-item": it.id },
      h("div", null, it.kind === "reply" ? it.text : `${it.label} (${it.kind})${it.text ? ": " + it.text : ""}${it.url ? " → " + it.url : ""}`),
      h("span", { class: "hint" }, `${it.id} · score ${it.score}${it.reason ? " · " + it.reason : ""}`),
      hidden && it.missing?.length ? h("span", { class: "hint" }, "Hidden: no value for " + it.missing.join(", ")) : null);
    replace(this.preview,
      h("p", { class: "hint" }, r.matched.length ? "Matching playbooks, best first: " + r.matched.join(", ") : "No playbook matches this visitor."),
      r.suggestions.length ? [h("h4", null, "Replies"), r.suggestions.map((s) => item(s))] : null,
      r.actions.length ? [h("h4", null, "Actions"), r.actions.map((a) => item(a))] : null,
      r.hidden?.length ? [h("h4", null, "Hidden"), r.hidden.map((x) => item(x, true))] : null,
    );
  }

  private async loadStats(): Promise<void> {
    if (this.stopped || !this.site) return;
    try {
      const r = await api<{ items: StatRow[] }>("GET", `/sites/${encodeURIComponent(this.site)}/playbooks/stats`);
      const num = (n: number | string) => h("td", { class: "num" }, String(n));
      replace(this.stats, h("table", { class: "pb-stats" },
        h("thead", null, h("tr", null, ["Playbook", "Item", "Kind", "Shown", "Used", "Unhelpful", "Yes", "No", "Use rate", "Resolution", "Score"].map((c) => h("th", null, c)))),
        h("tbody", null, r.items.map((s) => h("tr", { "data-item": s.id },
          h("td", null, s.title || s.playbook || "(removed)"),
          h("td", { class: "text", title: s.text }, s.text.length > 90 ? s.text.slice(0, 89) + "…" : s.text || s.id),
          h("td", null, s.kind),
          num(s.shown), num(s.used), num(s.unhelpful), num(s.yes), num(s.no),
          num(s.shown ? pct(s.use_rate) : "–"),
          h("td", { class: "num resolution" }, s.yes + s.no ? pct(s.resolution_rate) : "–"),
          num(s.score.toFixed(2)))))));
    } catch (e) {
      replace(this.stats, h("p", { class: "error" }, (e as Error).message));
    }
  }
}
