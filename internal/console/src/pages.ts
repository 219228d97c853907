// The pages besides the inbox: live visitors (any role), and for product
// teams the detectors, sites and agents.

import { api, ApiError, notAvailable } from "./api";
import { ago, clock, h, replace, s, toast } from "./dom";
import type { AgentSocket } from "./socket";
import { webhookEvents } from "./types";
import type { Agent, DeadDelivery, Role, Site, Visitor, Webhook } from "./types";

export interface Page {
  el: HTMLElement;
  stop?(): void;
}

export interface PageDeps {
  socket: AgentSocket;
  sites(): Promise<Site[]>;
  me: Agent;
  navigate(path: string): void;
}

const POLL_MS = 5000;

function unavailable(what: string): HTMLElement {
  return h("p", { class: "unavailable" }, `${what} is not available on this server yet.`);
}

function siteSelect(sites: Site[], current: string, onChange: (key: string) => void): HTMLSelectElement {
  const sel = h("select", { "aria-label": "Site", class: "site-select" }, sites.map((s) => h("option", { value: s.key }, `${s.name || s.key} (${s.key})`)));
  sel.value = current;
  sel.addEventListener("change", () => onChange(sel.value));
  return sel;
}

// ---- live visitors ----

interface LiveVisitor {
  visitor: Visitor;
  page?: { path?: string; title?: string } | string;
  score: number;
  explanation?: string;
  online_since?: string;
}

export class VisitorsPage implements Page {
  el = h("div", { class: "page visitors" });
  private timer = 0;
  private site = "";
  private body = h("div");

  constructor(private deps: PageDeps) {
    void this.init();
  }

  private async init(): Promise<void> {
    const sites = await this.deps.sites();
    this.site = sites[0]?.key ?? "";
    replace(this.el,
      h("header", { class: "pagehead" }, h("h1", null, "Live visitors"), sites.length > 1 ? siteSelect(sites, this.site, (k) => { this.site = k; void this.load(); }) : null,
        h("p", { class: "hint" }, "Visitors on the site now, most struggling first. Invite one to chat to send a proactive offer by hand.")),
      this.body);
    await this.load();
    this.timer = window.setInterval(() => void this.load(), POLL_MS);
  }

  private async load(): Promise<void> {
    try {
      const r = await api<{ visitors: LiveVisitor[] }>("GET", "/visitors/live?site=" + encodeURIComponent(this.site));
      this.draw(r.visitors ?? []);
    } catch (e) {
      clearInterval(this.timer);
      replace(this.body, notAvailable(e) ? unavailable("The live visitor list") : h("p", { class: "error" }, (e as Error).message));
    }
  }

  private draw(list: LiveVisitor[]): void {
    const canInvite = this.deps.me.role !== "analyst";
    if (!list.length) {
      replace(this.body, h("p", { class: "empty" }, "Nobody is on the site right now."));
      return;
    }
    const now = Date.now();
    replace(this.body, h("table", { class: "grid" },
      h("thead", null, h("tr", null, ["Visitor", "Page", "Score", "Why", "Online", ""].map((t) => h("th", null, t)))),
      h("tbody", null, list.map((lv) => {
        const v = lv.visitor;
        const path = typeof lv.page === "string" ? lv.page : lv.page?.path ?? "";
        return h("tr", { "data-visitor": v.id },
          h("td", null, v.name || v.email || "Anonymous", v.email && v.name ? h("div", { class: "hint" }, v.email) : null, v.email || v.external_id ? h("span", { class: v.verified ? "verified" : "unverified" }, v.verified ? "✓ verified" : "unverified") : null),
          h("td", { class: "path" }, path),
          h("td", null, h("span", { class: "score" + (lv.score >= 8 ? " high" : lv.score >= 3 ? " mid" : "") }, lv.score.toFixed(1))),
          h("td", { class: "why" }, lv.explanation ?? ""),
          h("td", null, ago(lv.online_since, now)),
          h("td", null, canInvite ? h("button", { "data-action": "invite", onclick: () => this.invite(v) }, "Invite to chat") : null),
        );
      })),
    ));
  }

  private invite(v: Visitor): void {
    const text = h("input", { value: "Hi! Can we help you with anything?", "aria-label": "Invitation text", maxlength: 200 });
    const form = h("form", { class: "inline", onsubmit: (e: Event) => {
      e.preventDefault();
      if (this.deps.socket.send({ type: "invite", visitor_id: v.id, text: text.value.trim() })) toast("Invitation sent.");
      else toast("Not connected; try again in a moment.", "error");
      form.remove();
    } }, text, h("button", { type: "submit", class: "primary" }, "Send"));
    const row = this.el.querySelector(`tr[data-visitor="${CSS.escape(v.id)}"] td:last-child`);
    row?.replaceChildren(form);
    clearInterval(this.timer); // keep the form while it is being filled in
    text.focus();
    form.addEventListener("submit", () => {
      void this.load();
      this.timer = window.setInterval(() => void this.load(), POLL_MS);
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// ---- detectors ----

interface Counter {
  rule: string;
  shadow: boolean;
  fired: number;
  offered: number;
  accepted: number;
  declined: number;
  resolved: number;
}

interface RuleJSON {
  id: string;
  signal: string;
  count?: number;
  window?: string;
  weight?: number;
  shadow?: boolean;
  disabled?: boolean;
  [k: string]: unknown;
}

interface Ruleset {
  threshold?: number;
  rules?: RuleJSON[];
  [k: string]: unknown;
}

interface Metrics {
  precision: number;
  recall: number;
  f1: number;
  pr_auc?: number;
  ttd_median_s: number;
  ttd_p90_s: number;
  alerts: number;
  episodes: number;
  detected: number;
  offers_per_1000: number;
}

interface Report {
  visits: number;
  events: number;
  threshold: number;
  overall: Metrics;
  rules: (Metrics & { rule: string; signal: string; shadow?: boolean })[];
  sweep?: (Metrics & { threshold: number })[];
}

export class DetectorsPage implements Page {
  el = h("div", { class: "page detectors" });
  private site = "";
  private rs: Ruleset = {};
  private meta = h("p", { class: "hint" });
  private form = h("div", { class: "rules-form" });
  private json = h("textarea", { class: "json", rows: 18, spellcheck: false, "aria-label": "Ruleset JSON" });
  private errors = h("div", { class: "validation", role: "alert" });
  private counters = new Map<string, Counter>();
  private countersNote = h("p", { class: "hint" });
  private report = h("div", { class: "report" });
  private sessions = h("input", { type: "number", min: 10, max: 20000, step: 100, value: 2000, "aria-label": "Sessions to generate", class: "sessions" });
  private timer = 0;
  private mode: "form" | "json" = "form";
  private canEdit: boolean;
  private body = h("div");

  constructor(private deps: PageDeps) {
    this.canEdit = deps.me.role === "admin" || deps.me.role === "analyst";
    void this.init();
  }

  private async init(): Promise<void> {
    const sites = await this.deps.sites();
    this.site = sites[0]?.key ?? "";
    replace(this.el,
      h("header", { class: "pagehead" }, h("h1", null, "Detectors"), sites.length > 1 ? siteSelect(sites, this.site, (k) => { this.site = k; void this.load(); }) : null, this.meta),
      this.body);
    await this.load();
  }

  private async load(): Promise<void> {
    clearInterval(this.timer);
    try {
      const r = await api<{ rules: Ruleset; revision?: string; updated_at?: string; updated_by?: string }>("GET", `/sites/${encodeURIComponent(this.site)}/rules`);
      this.rs = r.rules ?? {};
      this.meta.textContent = [r.revision ? `Revision ${r.revision}` : "", r.updated_by ? `by ${r.updated_by}` : "", r.updated_at ? ago(r.updated_at) + " ago" : ""].filter(Boolean).join(" · ");
    } catch (e) {
      replace(this.body, notAvailable(e) ? unavailable("Detector rules") : h("p", { class: "error" }, (e as Error).message));
      return;
    }
    const modeBtn = (m: "form" | "json", label: string) => h("button", { class: this.mode === m ? "on" : "", role: "tab", "data-mode": m, onclick: () => this.setMode(m) }, label);
    replace(this.body,
      h("section", { class: "card" },
        h("div", { class: "cardhead" }, h("h2", null, "Rules"),
          h("div", { class: "tabs", role: "tablist" }, modeBtn("form", "Form"), modeBtn("json", "JSON")),
          h("div", { class: "spacer" }),
          this.canEdit ? h("button", { class: "primary", "data-action": "save-rules", onclick: () => void this.save() }, "Save and apply") : null),
        this.errors,
        this.form, this.json,
        this.countersNote),
      h("section", { class: "card" },
        h("div", { class: "cardhead" }, h("h2", null, "Backtest"),
          h("p", { class: "hint" }, "Runs the rules above (saved or not) with the same code as lifeline replay."),
          h("div", { class: "spacer" }),
          h("label", { class: "inline hint" }, "Sessions", this.sessions),
          h("button", { "data-action": "backtest-generated", onclick: () => void this.backtest("generated") }, "On generated sessions"),
          h("button", { "data-action": "backtest-recorded", onclick: () => void this.backtest("recorded") }, "On recorded sessions")),
        this.report),
    );
    this.setMode(this.mode);
    await this.loadCounters();
    this.timer = window.setInterval(() => void this.loadCounters(), POLL_MS);
  }

  private async loadCounters(): Promise<void> {
    try {
      const r = await api<{ rules: Counter[]; since?: string }>("GET", `/sites/${encodeURIComponent(this.site)}/detector`);
      this.counters = new Map(r.rules.map((c) => [c.rule, c]));
      this.countersNote.textContent = r.since ? `Live counters since ${new Date(r.since).toLocaleString()}.` : "Live counters.";
      if (this.mode === "form") this.drawForm();
    } catch (e) {
      clearInterval(this.timer);
      this.countersNote.textContent = notAvailable(e) ? "Live counters are not available on this server yet." : (e as Error).message;
    }
  }

  private setMode(m: "form" | "json"): void {
    if (m === "form" && this.mode === "json" && !this.readJSON()) return;
    this.mode = m;
    for (const b of this.el.querySelectorAll<HTMLButtonElement>(".tabs [data-mode]")) b.classList.toggle("on", b.dataset.mode === m);
    if (m === "json") this.json.value = JSON.stringify(this.rs, null, 2);
    this.json.hidden = m !== "json";
    this.json.readOnly = !this.canEdit;
    this.form.hidden = m !== "form";
    if (m === "form") this.drawForm();
  }

  private readJSON(): boolean {
    try {
      this.rs = JSON.parse(this.json.value) as Ruleset;
      return true;
    } catch (e) {
      replace(this.errors, h("p", null, "The JSON does not parse: " + (e as Error).message));
      return false;
    }
  }

  private drawForm(): void {
    const ro = !this.canEdit;
    const num = (v: number | undefined, set: (n: number | undefined) => void, label: string, step = "1") => {
      const i = h("input", { type: "number", step, value: v ?? "", placeholder: "default", "aria-label": label, readonly: ro });
      i.addEventListener("change", () => set(i.value === "" ? undefined : Number(i.value)));
      return i;
    };
    const text = (v: string | undefined, set: (s: string | undefined) => void, label: string) => {
      const i = h("input", { value: v ?? "", placeholder: "default", "aria-label": label, size: 5, readonly: ro });
      i.addEventListener("change", () => set(i.value.trim() || undefined));
      return i;
    };
    const rules = this.rs.rules ?? [];
    replace(this.form,
      h("label", { class: "inline" }, "Offer threshold ", num(this.rs.threshold, (n) => { this.rs.threshold = n; }, "Threshold", "0.5")),
      h("table", { class: "grid rules" },
        h("thead", null, h("tr", null, ["Rule", "Signal", "Count", "Window", "Weight", "Shadow", "Fired", "Offered", "Accepted", "Declined", "Resolved", "Accept rate"].map((t) => h("th", null, t)))),
        h("tbody", null, rules.map((r, i) => {
          const c = this.counters.get(r.id);
          const shadow = h("input", { type: "checkbox", checked: Boolean(r.shadow), "aria-label": `Shadow ${r.id}`, "data-shadow": r.id, disabled: ro });
          shadow.addEventListener("change", () => { r.shadow = shadow.checked || undefined; });
          const rate = c && c.offered ? `${Math.round((100 * c.accepted) / c.offered)} %` : "–";
          return [
            h("tr", { "data-rule": r.id, class: r.disabled ? "disabled" : "" },
              h("td", null, h("b", null, r.id), r.disabled ? h("span", { class: "hint" }, " disabled") : null),
              h("td", null, r.signal),
              h("td", null, num(r.count, (n) => { r.count = n; }, `Count ${r.id}`)),
              h("td", null, text(r.window, (s) => { r.window = s; }, `Window ${r.id}`)),
              h("td", null, num(r.weight, (n) => { r.weight = n; }, `Weight ${r.id}`, "0.5")),
              h("td", null, shadow),
              ["fired", "offered", "accepted", "declined", "resolved"].map((k) => h("td", { class: "num" }, c ? String(c[k as keyof Counter]) : "–")),
              h("td", { class: "num" }, rate),
            ),
            h("tr", { class: "rule-errors", "data-rule-errors": String(i), hidden: true }, h("td", { colspan: 12 })),
          ];
        })),
      ),
    );
  }

  private async save(): Promise<void> {
    if (this.mode === "json" && !this.readJSON()) return;
    replace(this.errors);
    for (const r of this.form.querySelectorAll<HTMLElement>(".rule-errors")) r.hidden = true;
    try {
      await api("PUT", `/sites/${encodeURIComponent(this.site)}/rules`, this.rs);
      toast("Rules saved and applied.");
      await this.load();
    } catch (e) {
      if (e instanceof ApiError && e.code === "invalid") this.showErrors(e.message);
      else if (notAvailable(e)) replace(this.errors, unavailable("Saving rules"));
      else replace(this.errors, h("p", null, (e as Error).message));
    }
  }

  /** showErrors puts each line of the server's message next to the rule it names. */
  private showErrors(message: string): void {
    const lines = message.split("\n").map((l) => l.trim()).filter((l) => l && !/invalid ruleset:?$/.test(l));
    const general: string[] = [];
    for (const line of lines) {
      const m = /^rules\[(\d+)\]/.exec(line);
      const row = m && this.mode === "form" ? this.form.querySelector<HTMLElement>(`tr[data-rule-errors="${m[1]}"]`) : null;
      if (row) {
        row.hidden = false;
        row.firstElementChild!.appendChild(h("div", { class: "field-error" }, line));
      } else general.push(line);
    }
    replace(this.errors, general.map((l) => h("p", null, l)), lines.length && !general.length ? h("p", null, "Fix the rules marked below.") : null);
  }

  private async backtest(source: "generated" | "recorded"): Promise<void> {
    if (this.mode === "json" && !this.readJSON()) return;
    replace(this.report, h("p", { class: "hint" }, "Running…"));
    try {
      const r = await api<Report>("POST", `/sites/${encodeURIComponent(this.site)}/backtest`, { rules: this.rs, source, sessions: Number(this.sessions.value) || 2000, seed: 1, sweep: true });
      this.drawReport(r);
    } catch (e) {
      replace(this.report, notAvailable(e) ? unavailable("Backtesting") : h("p", { class: "error" }, (e as Error).message));
    }
  }

  private drawReport(r: Report): void {
    // A precision without findings, or a recall without episodes, is
    // undefined, not 0 %.
    const pct = (x: number, of: number) => (of ? `${(100 * x).toFixed(1)} %` : "–");
    const sec = (x: number) => (x ? `${x.toFixed(1)} s` : "–");
    const o = r.overall;
    replace(this.report,
      h("div", { class: "kpis" },
        kpi("Precision", pct(o.precision, o.alerts)), kpi("Recall", pct(o.recall, o.episodes)), kpi("F1", o.f1.toFixed(2)),
        kpi("Time to detect (median)", sec(o.ttd_median_s)), kpi("TTD p90", sec(o.ttd_p90_s)), kpi("Offers / 1000 visits", o.offers_per_1000.toFixed(1))),
      h("p", { class: "hint" }, `${r.visits} sessions, ${r.events} events, threshold ${r.threshold}.`),
      r.sweep?.length ? sweepChart(r.sweep, r.threshold) : null,
      h("table", { class: "grid" },
        h("thead", null, h("tr", null, ["Rule", "Signal", "Alerts", "Precision", "Recall", "TTD median"].map((t) => h("th", null, t)))),
        h("tbody", null, r.rules.map((x) => h("tr", null, h("td", null, x.rule, x.shadow ? h("span", { class: "hint" }, " shadow") : null), h("td", null, x.signal),
          h("td", { class: "num" }, String(x.alerts)), h("td", { class: "num" }, pct(x.precision, x.alerts)), h("td", { class: "num" }, pct(x.recall, x.episodes)), h("td", { class: "num" }, sec(x.ttd_median_s)))))),
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function kpi(label: string, value: string): HTMLElement {
  return h("div", { class: "kpi" }, h("span", { class: "value" }, value), h("span", { class: "label" }, label));
}

/** sweepChart draws precision and recall against the threshold as an SVG line chart. */
function sweepChart(rows: { threshold: number; precision: number; recall: number; alerts: number }[], current: number): HTMLElement {
  const W = 560, H = 220, L = 44, R = 16, T = 14, B = 34;
  const xs = rows.map((r) => r.threshold);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const x = (v: number) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - R);
  const y = (v: number) => T + (1 - v) * (H - T - B);
  // Thresholds too high for any offer have no precision: its line stops.
  const have = (key: "precision" | "recall") => (key === "recall" ? rows : rows.filter((r) => r.alerts > 0));
  const line = (key: "precision" | "recall") => have(key).map((r) => `${x(r.threshold).toFixed(1)},${y(r[key]).toFixed(1)}`).join(" ");
  const grid = [0, 0.25, 0.5, 0.75, 1];
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "Precision and recall by threshold" },
    grid.map((g) => [
      s("line", { x1: L, x2: W - R, y1: y(g), y2: y(g), class: "gridline" }),
      s("text", { x: L - 6, y: y(g) + 4, "text-anchor": "end", class: "axis" }, `${g * 100}%`),
    ]),
    rows.map((r) => s("text", { x: x(r.threshold), y: H - B + 16, "text-anchor": "middle", class: "axis" }, String(r.threshold))),
    s("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "axis" }, "threshold"),
    current >= x0 && current <= x1 ? s("line", { x1: x(current), x2: x(current), y1: T, y2: H - B, class: "current" }) : null,
    s("polyline", { points: line("precision"), class: "precision", fill: "none" }),
    s("polyline", { points: line("recall"), class: "recall", fill: "none" }),
    (["precision", "recall"] as const).map((key) => have(key).map((r) => s("circle", { cx: x(r.threshold), cy: y(r[key]), r: 3, class: key }))),
  );
  return h("figure", { class: "sweep" }, svg as unknown as HTMLElement,
    h("figcaption", null, h("span", { class: "key precision" }, "Precision"), h("span", { class: "key recall" }, "Recall"), h("span", { class: "key current" }, "Current threshold")));
}

// ---- sites ----

export class SitesPage implements Page {
  el = h("div", { class: "page sites" });
  private admin: boolean;

  constructor(deps: PageDeps) {
    this.admin = deps.me.role === "admin";
    void this.load();
  }

  private async load(): Promise<void> {
    let sites: Site[];
    try {
      sites = (await api<{ sites: Site[] }>("GET", "/sites")).sites;
    } catch (e) {
      replace(this.el, h("p", { class: "error" }, (e as Error).message));
      return;
    }
    replace(this.el,
      h("header", { class: "pagehead" }, h("h1", null, "Sites")),
      sites.map((s) => this.site(s)),
      this.admin ? this.addForm() : null);
  }

  private site(site: Site): HTMLElement {
    const origin = location.origin;
    const snippet = `<script>window.lifeline=window.lifeline||function(){(lifeline.q=lifeline.q||[]).push(arguments)};</script>\n<script async src="${origin}/widget.js" data-site="${site.key}"></script>`;
    const origins = h("input", { value: site.origins.join(", "), "aria-label": "Allowed origins", readonly: !this.admin, size: 40 });
    const theme = h("input", { type: "color", value: site.theme || "#3355ff", "aria-label": "Theme colour", disabled: !this.admin });
    const receipts = h("input", { type: "checkbox", checked: !site.hide_read_receipts, disabled: !this.admin });
    const err = h("p", { class: "field-error" });
    const patch = async (body: Record<string, unknown>) => {
      err.textContent = "";
      try {
        await api("PATCH", `/sites/${encodeURIComponent(site.key)}`, body);
        toast("Saved.");
        void this.load();
      } catch (e) {
        err.textContent = (e as Error).message;
      }
    };
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = site.theme || "#3355ff";
    return h("section", { class: "card site", "data-site": site.key },
      h("div", { class: "cardhead" }, h("h2", null, swatch, site.name || site.key), h("code", null, site.key)),
      h("dl", null,
        h("dt", null, "Allowed origins"), h("dd", null, origins),
        h("dt", null, "Theme"), h("dd", null, theme),
        h("dt", null, "Read receipts"), h("dd", null, h("label", null, receipts, " Show visitors \u201cSeen\u201d once support has read their message")),
        this.admin ? [h("dt", null, "Identity secret"), h("dd", null, h("code", { class: "secret" }, site.identity_secret ?? ""),
          h("button", { class: "link", onclick: () => { if (confirm("Rotate the identity secret? Identify hashes signed with the old one stop verifying.")) void patch({ rotate_secret: true }); } }, "Rotate"))] : null,
      ),
      this.admin ? h("button", { "data-action": "save-site", onclick: () => void patch({ origins: origins.value.split(",").map((o) => o.trim()).filter(Boolean), theme: theme.value, hide_read_receipts: !receipts.checked }) }, "Save") : null,
      err,
      h("h3", null, "Snippet"),
      h("pre", { class: "snippet" }, snippet),
      h("button", { onclick: () => void navigator.clipboard.writeText(snippet).then(() => toast("Snippet copied."), () => toast("Copy failed: select the text and copy it.", "error")) }, "Copy snippet"),
      this.admin ? webhooks(site.key) : null,
    );
  }

  private addForm(): HTMLElement {
    const name = h("input", { required: true, "aria-label": "Name", placeholder: "Shop" });
    const key = h("input", { "aria-label": "Key", placeholder: "generated if empty", pattern: "[a-z0-9\\-]*" });
    const origins = h("input", { required: true, "aria-label": "Origins", placeholder: "shop.example.com, *.example.com", size: 40 });
    const err = h("p", { class: "field-error" });
    return h("form", { class: "card add", onsubmit: async (e: Event) => {
      e.preventDefault();
      err.textContent = "";
      try {
        await api("POST", "/sites", { name: name.value.trim(), key: key.value.trim() || undefined, origins: origins.value.split(",").map((o) => o.trim()).filter(Boolean) });
        toast("Site added.");
        void this.load();
      } catch (x) {
        err.textContent = (x as Error).message;
      }
    } }, h("h2", null, "Add a site"), h("div", { class: "row" }, h("label", null, "Name", name), h("label", null, "Key", key), h("label", null, "Origins", origins), h("button", { type: "submit", class: "primary" }, "Add")), err);
  }
}

// shownDead is how many stopped deliveries a site's card lists;
// deadListed, how many the server's list holds at most.
const shownDead = 20;
const deadListed = 500;

// webhooks is a site's webhook section for admins: the subscriptions, a
// paused one's reason, adding and removing, and the dead deliveries with
// a way to send them again.
function webhooks(siteKey: string): HTMLElement {
  const el = h("div", { class: "webhooks" });
  const site = encodeURIComponent(siteKey);
  const err = h("p", { class: "field-error" });
  const act = async (what: () => Promise<unknown>, done: string) => {
    err.textContent = "";
    try {
      await what();
      toast(done);
      void load();
    } catch (e) {
      err.textContent = (e as Error).message;
    }
  };
  const hook = (w: Webhook) => h("li", { "data-hook": w.id },
    h("code", { class: "url" }, w.url),
    h("span", { class: "hint events", title: w.events.join(", ") },
      w.events.length === webhookEvents.length ? " every event" : w.events.length === 1 ? ` ${w.events[0]}` : ` ${w.events.length} events`),
    h("span", { class: "hint" }, " · secret ", h("code", { class: "secret" }, w.secret)),
    w.health ? h("p", { class: "paused" }, `Paused until ${clock(w.health.paused_until)} after ${w.health.failures_in_a_row} failures in a row: ${w.health.last_error}`) : null,
    h("button", { class: "link danger", onclick: () => { if (confirm(`Stop sending events to ${w.url}?`)) void act(() => api("DELETE", `/sites/${site}/webhooks/${encodeURIComponent(w.id)}`), "Webhook removed."); } }, "Remove"));
  const dead = (d: DeadDelivery) => h("li", { "data-dead": d.id },
    h("span", null, `${d.event}, stopped ${clock(d.died_at)} after ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}: ${d.last_error} `),
    h("button", { class: "link", onclick: () => void act(() => api("POST", `/webhooks/dead/${encodeURIComponent(d.id)}/redeliver?site=${site}`), "Sent again.") }, "Send again"));
  const url = h("input", { type: "url", required: true, "aria-label": "Webhook URL", placeholder: "https://example.com/hooks/lifeline", size: 40 });
  const boxes = webhookEvents.map((ev) => h("input", { type: "checkbox", value: ev, checked: true }));
  const events = h("details", { class: "hook-events" }, h("summary", null, "Events"),
    h("div", { class: "grid" }, boxes.map((b) => h("label", null, b, " ", b.value))));
  const add = h("form", { class: "add-hook", onsubmit: (e: Event) => {
    e.preventDefault();
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!chosen.length) {
      err.textContent = "Choose at least one event.";
      return;
    }
    const all = chosen.length === boxes.length;
    void act(async () => {
      await api("POST", `/sites/${site}/webhooks`, { url: url.value.trim(), events: all ? undefined : chosen });
      url.value = "";
      for (const b of boxes) b.checked = true;
    }, `Webhook added: ${all ? "every event" : chosen.join(", ")}, signed with the secret shown.`);
  } }, url, h("button", { type: "submit" }, "Add webhook"), events);
  const load = async () => {
    let hooks: Webhook[], deadList: DeadDelivery[];
    try {
      [hooks, deadList] = await Promise.all([
        api<{ webhooks: Webhook[] }>("GET", `/sites/${site}/webhooks`).then((r) => r.webhooks),
        api<{ deliveries: DeadDelivery[] }>("GET", `/webhooks/dead?site=${site}`).then((r) => r.deliveries),
      ]);
    } catch (e) {
      replace(el, notAvailable(e) ? null : h("p", { class: "error" }, (e as Error).message));
      return;
    }
    replace(el, h("h3", null, "Webhooks"),
      hooks.length ? h("ul", { class: "hooks" }, hooks.map(hook)) : h("p", { class: "empty" }, "No webhooks: events reach no other system."),
      add, err,
      deadList.length ? [
        h("h4", null, "Stopped deliveries"),
        h("ul", { class: "dead" }, deadList.slice(0, shownDead).map(dead)),
        deadList.length > shownDead ? h("p", { class: "hint" }, `and ${deadList.length >= deadListed ? "at least " : ""}${deadList.length - shownDead} more`) : null,
        deadList.length > 1 ? h("button", { "data-action": "resend-all",
          onclick: () => void act(() => api("POST", `/webhooks/dead/redeliver?site=${site}`), "Stopped deliveries sent again.") }, "Send all again") : null,
      ] : null);
  };
  void load();
  return el;
}

// ---- agents ----

export class AgentsPage implements Page {
  el = h("div", { class: "page agents" });

  constructor(private deps: PageDeps) {
    void this.load();
  }

  private async load(): Promise<void> {
    let agents: Agent[];
    try {
      agents = (await api<{ agents: Agent[] }>("GET", "/agents")).agents;
    } catch (e) {
      replace(this.el, h("p", { class: "error" }, (e as Error).message));
      return;
    }
    const roles: Role[] = ["agent", "analyst", "admin"];
    replace(this.el,
      h("header", { class: "pagehead" }, h("h1", null, "Agents"), h("p", { class: "hint" }, "Disabled accounts are not listed by the server.")),
      h("table", { class: "grid" },
        h("thead", null, h("tr", null, ["Name", "Email", "Role", "Status", "Load", "Capacity", ""].map((t) => h("th", null, t)))),
        h("tbody", null, agents.map((a) => {
          const me = a.id === this.deps.me.id;
          const role = h("select", { "aria-label": `Role of ${a.email}`, disabled: me }, roles.map((r) => h("option", { value: r }, r)));
          role.value = a.role;
          role.addEventListener("change", () => void this.patch(a, { role: role.value }));
          const cap = h("input", { type: "number", min: 1, max: 50, value: a.capacity, "aria-label": `Capacity of ${a.email}`, class: "capacity" });
          cap.addEventListener("change", () => void this.patch(a, { capacity: Number(cap.value) }));
          return h("tr", { "data-agent": a.email },
            h("td", null, a.name), h("td", null, a.email), h("td", null, role),
            h("td", null, h("span", { class: "dot " + (a.status ?? "offline") }), a.status ?? "offline"),
            h("td", { class: "num" }, String(a.load ?? 0)), h("td", null, cap),
            h("td", null, me ? null : h("button", { class: "danger", "data-action": "disable", onclick: () => { if (confirm(`Disable ${a.email}? They are logged out and get no more conversations.`)) void this.patch(a, { disabled: true }); } }, "Disable")),
          );
        })),
      ),
      this.addForm(roles),
    );
  }

  private async patch(a: Agent, body: Record<string, unknown>): Promise<void> {
    try {
      await api("PATCH", `/agents/${encodeURIComponent(a.id)}`, body);
      toast("Saved.");
    } catch (e) {
      toast((e as Error).message, "error");
    }
    void this.load();
  }

  private addForm(roles: Role[]): HTMLElement {
    const name = h("input", { required: true, "aria-label": "Name", name: "name" });
    const email = h("input", { type: "email", required: true, "aria-label": "Email", name: "email" });
    const role = h("select", { "aria-label": "Role", name: "role" }, roles.map((r) => h("option", { value: r }, r)));
    const password = h("input", { type: "password", required: true, minlength: 8, "aria-label": "Password", name: "password", autocomplete: "new-password" });
    const err = h("p", { class: "field-error", role: "alert" });
    return h("form", { class: "card add", onsubmit: async (e: Event) => {
      e.preventDefault();
      err.textContent = "";
      try {
        await api("POST", "/agents", { name: name.value.trim(), email: email.value.trim(), role: role.value, password: password.value });
        toast(`${email.value} added.`);
        void this.load();
      } catch (x) {
        err.textContent = (x as Error).message;
      }
    } }, h("h2", null, "Add an agent"),
    h("div", { class: "row" }, h("label", null, "Name", name), h("label", null, "Email", email), h("label", null, "Role", role), h("label", null, "Initial password", password), h("button", { type: "submit", class: "primary", "data-action": "add-agent" }, "Add")), err);
  }
}
