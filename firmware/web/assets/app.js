// The console's pages. Each entry of PAGES is one page: its menu label key, the lowest role
// that sees it, and render(args) that fills #page. Routing is by location.hash
// (#search?q=…, #session/ID, #conditions, #audit, #password); every data access goes through api().
"use strict";
(function () {
  const ROLES = { viewer: 0, analyst: 1, admin: 2 };
  let me = null;
  const t = (k, v) => window.kt(me ? me.lang : "ja", k, v);
  const $ = (sel) => document.querySelector(sel);

  // Builds an element: el("td", {class: "x"}, "text", child, …). Text is always text, never HTML.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = { "X-CSRF-Token": me ? me.csrf : "" };
    if (opts.body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method: opts.method || "GET", headers, credentials: "same-origin",
      body: opts.body ? JSON.stringify(opts.body) : undefined });
    if (r.status === 401) { location.href = "/login"; throw new Error("login required"); }
    const j = await r.json().catch(() => ({}));
    return { ok: r.ok, status: r.status, json: j };
  }

  // ---- 検索 -------------------------------------------------------------------------
  const FIELDS = ["protocol", "client", "server", "port", "host", "url", "method", "status", "query",
    "content_type", "user_agent", "from", "to", "subject", "attachment", "sni", "user", "mac"];
  const first = (...xs) => xs.find((x) => x !== undefined && x !== null && x !== "") ?? "";
  const COLUMNS = [
    { key: "c_protocol", simple: true, get: (r) => r.protocol },
    { key: "c_server", simple: false, get: (r) => r.server && r.server.ip + (r.server_vpn ? " (VPN)" : "") },
    { key: "c_sport", simple: false, get: (r) => r.server && r.server.port },
    { key: "c_client", simple: true, get: (r) => r.client && r.client.ip + (r.client_vpn ? " (VPN)" : "") },
    { key: "c_user", simple: true, get: (r) => r.login_user },
    { key: "c_mac", simple: false, get: (r) => r.client && r.client.mac },
    { key: "c_host", simple: true, get: (r) => first(r.http && r.http.host, r.mail && r.mail.subject, r.tls && r.tls.sni, r.dns && r.dns.query) },
    { key: "c_url", simple: true, get: (r) => r.http && r.http.url },
    { key: "c_method", simple: true, get: (r) => first(r.http && r.http.method, r.mail && r.mail.from) },
    { key: "c_status", simple: true, get: (r) => first(r.http && r.http.status, r.mail && (r.mail.to || []).join(", ")) },
    { key: "c_query", simple: true, get: (r) => first(r.http && r.http.query, r.dns && r.dns.query) },
    { key: "c_ctype", simple: true, get: (r) => r.http && r.http.content_type },
    { key: "c_attach", simple: true, get: (r) => r.mail && r.mail.attachments ? r.mail.attachments.map((a) => a.name).join(", ") : "" },
    { key: "c_flags", simple: true, get: (r) => (r.flags || []).join(" ") },
    { key: "c_bytes", simple: false, get: (r) => `${r.bytes_up} / ${r.bytes_down}` },
    { key: "c_packets", simple: false, get: (r) => r.packets },
    { key: "c_time", simple: true, get: (r) => r.time_local },
  ];
  const state = { q: "", offset: 0, limit: 50, order: "desc", full: false, tab: "detail" };

  function searchForm() {
    const tabs = el("div", { class: "tabs", role: "tablist" },
      el("button", { type: "button", id: "tab-simple", class: state.tab === "simple" ? "on" : "", onclick: () => { state.tab = "simple"; render(); } }, t("simple_search")),
      el("button", { type: "button", id: "tab-detail", class: state.tab === "detail" ? "on" : "", onclick: () => { state.tab = "detail"; render(); } }, t("detail_search")));
    let form;
    if (state.tab === "simple") {
      const rows = el("div", { id: "simple-rows" });
      const addRow = () => rows.append(el("div", { class: "row" },
        el("select", { class: "sf" }, FIELDS.map((f) => el("option", { value: f }, f))),
        el("input", { class: "sv", "aria-label": "value" })));
      addRow();
      const built = el("code", { id: "built" }, "");
      const build = () => {
        const parts = [...rows.querySelectorAll(".row")].map((r) => {
          const v = r.querySelector(".sv").value.trim();
          return v ? `${r.querySelector(".sf").value}:"${v.replace(/["\\]/g, "\\$&")}"` : null;
        }).filter(Boolean);
        return parts.length ? parts.join(" AND ") : "*";
      };
      rows.addEventListener("input", () => { built.textContent = build(); });
      form = el("form", { id: "simple-form", onsubmit: (ev) => { ev.preventDefault(); go(build()); } },
        rows, el("button", { type: "button", onclick: addRow }, t("add_row")), " ",
        el("button", { type: "submit" }, t("run_search")), el("p", {}, t("built_query"), ": ", built));
    } else {
      const input = el("input", { id: "q", class: "q", value: state.q, spellcheck: "false", "aria-label": t("built_query") });
      form = el("form", { id: "detail-form", onsubmit: (ev) => { ev.preventDefault(); go(input.value); } },
        input, " ", el("button", { type: "submit", id: "run" }, t("run_search")),
        el("pre", { id: "query-error", class: "error", role: "alert" }));
    }
    return el("section", {}, tabs, form);
  }

  function go(q) {
    state.q = q; state.offset = 0;
    location.hash = "#search?q=" + encodeURIComponent(q) + "&order=" + state.order;
  }

  // A content match: the passage with the matched words in <mark>, every piece a text node
  // (reconstructed content is never markup), the object it came from, its session.
  function snippetView(h) {
    const sn = h.snippet;
    return el("div", { class: "snippet" },
      el("span", { class: "snippet-src" }, sn.name || sn.part, " ", el("code", { title: sn.sha256 }, (sn.sha256 || "").slice(0, 12)), ": "),
      el("span", { class: "snippet-text" }, sn.segments.map((g) => g.hit ? el("mark", {}, g.text) : g.text)), " ",
      el("a", { href: "#session/" + encodeURIComponent(h.id), class: "snippet-link" }, t("detail")));
  }

  async function pageSearch(args) {
    if (args.has("q")) state.q = args.get("q");
    if (args.has("order")) state.order = args.get("order") === "asc" ? "asc" : "desc";
    if (args.has("offset")) state.offset = Math.max(0, parseInt(args.get("offset"), 10) || 0);
    const root = $("#page");
    root.replaceChildren(searchForm(), el("section", { id: "results" }));
    if (!state.q) return;
    const out = $("#results");
    out.replaceChildren(el("p", {}, t("loading")));
    const p = new URLSearchParams({ q: state.q, offset: state.offset, limit: state.limit, order: state.order });
    const r = await api("/api/search?" + p);
    if (!r.ok) {
      out.replaceChildren();
      if (r.json.error === "query") {
        const pre = $("#query-error") || out.appendChild(el("pre", { class: "error" }));
        // No column: the query parsed but could not be prepared (e.g. the findings of a
        // finding: term are unreadable): the message alone, no caret.
        pre.replaceChildren(r.json.column == null ? t("error", { msg: r.json.message })
          : t("query_error", { col: r.json.column, msg: r.json.message }) + "\n" + state.q + "\n" + " ".repeat(Math.max(0, r.json.column - 1)) + "^");
      } else out.append(el("p", { class: "error" }, r.json.error === "no_index" ? t("no_index") : t("error", { msg: r.json.message || r.status })));
      return;
    }
    const j = r.json;
    const cols = COLUMNS.filter((c) => state.full || c.simple);
    const bar = el("div", { class: "bar" },
      el("strong", { id: "hit-count" }, t("hits", { n: j.total })), "  ",
      t("order"), ": ", el("button", { type: "button", id: "order", onclick: () => { state.order = state.order === "desc" ? "asc" : "desc"; state.offset = 0; refresh(); } }, t(state.order === "desc" ? "newest" : "oldest")), "  ",
      t("columns"), ": ", el("button", { type: "button", id: "columns", onclick: () => { state.full = !state.full; refresh(); } }, t(state.full ? "simple_view" : "full_view")), "  ",
      el("button", { type: "button", id: "prev", disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - state.limit); refresh(); } }, t("prev")), " ",
      el("span", {}, `${j.total ? state.offset + 1 : 0}–${state.offset + j.hits.length}`), " ",
      el("button", { type: "button", id: "next", disabled: state.offset + j.hits.length >= j.total, onclick: () => { state.offset += state.limit; refresh(); } }, t("next")));
    const table = el("table", { id: "hits", class: "hits" },
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, t(c.key))), el("th", {}, ""))),
      el("tbody", {}, j.hits.map((h) => [el("tr", {}, cols.map((c) => el("td", {}, c.get(h) ?? "")),
        el("td", {}, el("a", { href: "#session/" + encodeURIComponent(h.id), class: "detail-link" }, t("detail")))),
        h.snippet ? el("tr", { class: "snippet-row" }, el("td", { colspan: cols.length + 1 }, snippetView(h))) : null])));
    out.replaceChildren(bar, (j.notes || []).map((n) => el("p", { class: "note-line" }, n)), el("div", { class: "scroll" }, table));
  }
  function refresh() {
    location.hash = "#search?q=" + encodeURIComponent(state.q) + "&order=" + state.order + "&offset=" + state.offset + "&r=" + Date.now() % 1000;
  }

  // ---- セッション詳細 ----------------------------------------------------------------
  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj)) {
      const key = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
      else if (Array.isArray(v) && v.some((x) => x && typeof x === "object")) v.forEach((x, i) => flatten(x, `${key}[${i}]`, out));
      else out.push([key, Array.isArray(v) ? v.join(", ") : v]);
    }
    return out;
  }
  async function pageSession(args, id) {
    const r = await api("/api/sessions/" + encodeURIComponent(id));
    const root = $("#page");
    if (!r.ok) { root.replaceChildren(el("p", { class: "error" }, t("error", { msg: r.json.message || r.status }))); return; }
    const rows = flatten(r.json, "", []);
    const dl = ROLES[me.role] >= ROLES.analyst
      ? el("a", { id: "pcap-link", class: "button", href: "/api/sessions/" + encodeURIComponent(id) + "/pcap", download: "" }, t("dump")) : null;
    root.replaceChildren(el("h2", {}, t("session"), " ", el("code", {}, id)),
      el("p", {}, el("a", { href: "#search?q=" + encodeURIComponent(state.q), id: "back" }, t("back")), " ", dl),
      el("table", { class: "kv", id: "detail" }, el("thead", {}, el("tr", {}, el("th", {}, t("field")), el("th", {}, t("value")))),
        el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v === null ? "" : String(v)))))));
  }

  // ---- 診断結果 (findings) ----------------------------------------------------------
  async function pageFindings() {
    const r = await api("/api/findings");
    const root = $("#page");
    if (!r.ok) { root.replaceChildren(el("p", { class: "error" }, t("error", { msg: r.json.message || r.status }))); return; }
    root.replaceChildren(el("h2", {}, t("findings")),
      el("p", { class: "error", id: "site-error" }, r.json.site_error ? t("error", { msg: r.json.site_error }) : ""),
      el("div", { class: "scroll" }, el("table", { class: "hits", id: "findings" },
        el("thead", {}, el("tr", {}, ["f_risk", "f_title", "c_client", "c_server", "f_count", "f_volume", "f_last", "f_counter", "f_evidence"].map((k) => el("th", {}, t(k))))),
        el("tbody", {}, r.json.findings.map((f) => el("tr", {},
          el("td", { class: "risk risk-" + f.risk, title: f.override_source ? f.original_risk + " → " + f.risk : "" }, f.risk),
          el("td", { class: "wrap" }, f.title,
            f.override_source ? el("div", { class: "override" }, t("f_override", { from: f.original_risk, to: f.risk, why: f.override_reason || "" })) : null,
            f.note ? el("div", { class: "note" }, t("f_note"), ": ", f.note) : null), el("td", {}, f.client || ""), el("td", {}, f.server || ""),
          el("td", {}, f.count), el("td", { class: "volume" }, f.volume_text || ""), el("td", {}, f.last_local), el("td", { class: "wrap" }, (f.countermeasures || []).join(" / ")),
          el("td", {}, (f.evidence || []).slice(0, 5).map((id) => [el("a", { href: "#session/" + encodeURIComponent(id), class: "evidence-link" }, id), " "]))))))));
  }

  // ---- 条件リスト (alert conditions) ----------------------------------------------------
  // Errors of the query come back with the parser's column: the caret goes under it.
  function caretText(q, col, msg) {
    return t("query_error", { col, msg }) + "\n" + q + "\n" + " ".repeat(Math.max(0, col - 1)) + "^";
  }
  async function pageConditions(args) {
    const r = await api("/api/conditions");
    const root = $("#page");
    if (!r.ok) { root.replaceChildren(el("p", { class: "error" }, t("error", { msg: r.json.message || r.status }))); return; }
    const may = ROLES[me.role] >= ROLES.analyst;
    const list = r.json.conditions;
    const editing = args.get("edit") ? list.find((c) => c.id === args.get("edit")) : null;
    const msg = el("pre", { id: "cond-error", class: "error", role: "alert" });
    const reload = () => { location.hash = "#conditions?r=" + Date.now() % 100000; };
    const act = async (path, opts) => {
      const x = await api(path, opts);
      if (x.ok) reload(); else msg.textContent = t("error", { msg: x.json.message || x.status });
    };
    let form = null;
    if (may) {
      const c = editing || { name: "", query: "", severity: "warning", comment: "", enabled: true };
      const name = el("input", { id: "c-name", value: c.name, required: true, maxlength: 100 });
      const query = el("input", { id: "c-query", class: "q", value: c.query, spellcheck: "false", required: true });
      const sev = el("select", { id: "c-severity" }, r.json.severities.map((v) => el("option", { value: v, selected: v === c.severity }, t("sev_" + v))));
      const comment = el("input", { id: "c-comment", value: c.comment, maxlength: 1000 });
      const on = el("input", { id: "c-enabled", type: "checkbox", checked: c.enabled });
      form = el("form", { id: "cond-form", class: "grid", onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { name: name.value, query: query.value, severity: sev.value, comment: comment.value, enabled: on.checked };
        const x = await api(editing ? "/api/conditions/" + encodeURIComponent(editing.id) : "/api/conditions", { method: "POST", body });
        if (x.ok) { reload(); return; }
        msg.textContent = x.json.error === "query" ? caretText(query.value, x.json.column, x.json.message)
          : t("error", { msg: x.json.message || x.status });
      } },
      el("label", { for: "c-name" }, t("k_name")), name,
      el("label", { for: "c-severity" }, t("k_severity")), sev,
      el("label", { for: "c-query" }, t("built_query")), query,
      el("label", { for: "c-comment" }, t("k_comment")), comment,
      el("label", { for: "c-enabled" }, t("k_enabled")), on,
      el("span", {}), el("span", {}, el("button", { type: "submit", id: "c-save" }, t(editing ? "k_update" : "k_add")), " ",
        editing ? el("a", { href: "#conditions", class: "button" }, t("k_cancel")) : null));
    }
    const rows = list.map((c) => el("tr", { class: c.enabled ? "" : "off", "data-name": c.name },
      el("td", {}, c.name), el("td", { class: "sev sev-" + c.severity }, t("sev_" + c.severity)),
      el("td", { class: "wrap mono" }, c.query, c.query_error ? el("div", { class: "error" }, c.query_error) : null),
      el("td", { title: c.comment }, c.comment), el("td", {}, t("src_" + c.source)), el("td", {}, c.registrant),
      el("td", {}, c.enabled ? t("k_on") : t("k_off")), el("td", { class: "hits-n" }, c.hits), el("td", {}, c.last_fired_local || "—"),
      el("td", { class: "actions" },
        el("a", { href: "#search?q=" + encodeURIComponent(c.query), class: "button run-link" }, t("k_run")), " ",
        may ? el("button", { type: "button", class: "toggle", onclick: () => act("/api/conditions/" + encodeURIComponent(c.id) + "/enabled", { method: "POST", body: { enabled: !c.enabled } }) }, t(c.enabled ? "k_disable" : "k_enable")) : null, " ",
        may && c.source === "stored" ? el("a", { href: "#conditions?edit=" + encodeURIComponent(c.id), class: "button edit-link" }, t("k_edit")) : null, " ",
        may && c.source === "stored" ? el("button", { type: "button", class: "delete", onclick: () => { if (confirm(t("k_confirm_delete", { name: c.name }))) act("/api/conditions/" + encodeURIComponent(c.id), { method: "DELETE" }); } }, t("k_delete")) : null)));
    root.replaceChildren(el("div", {}, el("h2", {}, t("conditions")),
      r.json.store_error ? el("p", { class: "error", id: "store-error" }, r.json.store_error) : null,
      el("div", { class: "scroll" }, el("table", { class: "hits", id: "conditions" },
        el("thead", {}, el("tr", {}, ["k_name", "k_severity", "built_query", "k_comment", "k_source", "k_registrant", "k_enabled", "k_hits", "k_last", ""].map((k) => el("th", {}, k ? t(k) : "")))),
        el("tbody", {}, rows))),
      form ? el("h3", {}, t(editing ? "k_edit_title" : "k_add_title")) : null, form, msg));
  }

  // ---- レポート ------------------------------------------------------------------------
  // The report is made on the server (seconds to minutes on a full store): the page shows
  // the time waited until the file arrives, then hands it to the browser as a download.
  function pageReport() {
    const lang = el("select", { id: "r-lang" }, ["ja", "en"].map((l) => el("option", { value: l, selected: l === me.lang }, l === "ja" ? "日本語" : "English")));
    const status = el("p", { id: "report-status", role: "status" });
    let busy = false;
    const get = async (format) => {
      if (busy) return;
      busy = true;
      const started = Date.now();
      const tick = () => { status.textContent = t("r_making", { s: Math.round((Date.now() - started) / 1000) }); };
      tick();
      const timer = setInterval(tick, 1000);
      try {
        const r = await fetch("/api/report?" + new URLSearchParams({ lang: lang.value, format }), { credentials: "same-origin" });
        if (r.status === 401) { location.href = "/login"; return; }
        if (!r.ok) {
          const j = await r.json().catch(() => ({}));
          status.textContent = j.error === "busy" ? t("r_busy") : t("error", { msg: j.message || r.status });
          return;
        }
        const name = ((r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/) || [])[1] || "kuroko-report." + format;
        const blob = await r.blob();
        const a = el("a", { href: URL.createObjectURL(blob), download: name, id: "report-file" }, name);
        a.click();
        status.replaceChildren(t("r_done", { s: Math.round((Date.now() - started) / 1000) }), " ", a);
      } finally { clearInterval(timer); busy = false; }
    };
    $("#page").replaceChildren(el("h2", {}, t("report")),
      el("p", {}, t("r_intro")),
      el("p", {}, el("label", { for: "r-lang" }, t("r_lang")), " ", lang, " ",
        el("button", { type: "button", id: "r-html", onclick: () => get("html") }, t("r_html")), " ",
        el("button", { type: "button", id: "r-pdf", onclick: () => get("pdf") }, t("r_pdf"))),
      status);
  }

  // ---- 統計 (statistics) ---------------------------------------------------------------
  // Charts are SVG made by the server (the report's own charts), shown as images: no markup
  // from the server ever enters the page.
  const svgImg = (svg) => el("img", { class: "chart", alt: "", src: "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(svg))) });
  function drawBlocks(blocks) {
    return blocks.map((b) => {
      switch (b.kind) {
        case "h": return el("h3", {}, b.text);
        case "p": return el("p", {}, b.text);
        case "list": return el("ul", {}, b.items.map((i) => el("li", {}, i)));
        case "kv": return el("table", { class: "kv" }, el("tbody", {}, b.rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))));
        case "table": return el("div", { class: "scroll" }, el("table", { class: "hits stats" },
          el("thead", {}, el("tr", {}, b.columns.map((c) => el("th", {}, c)))),
          el("tbody", {}, b.rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: b.numeric[i] ? "num" : "" }, c)))))));
        case "svg": return svgImg(b.svg);
        default: return null;
      }
    });
  }
  async function pageStats() {
    const root = $("#page");
    root.replaceChildren(el("h2", {}, t("stats")), el("p", { id: "stats-wait" }, t("loading")));
    const r = await api("/api/stats?lang=" + me.lang);
    if (!r.ok) { root.replaceChildren(el("h2", {}, t("stats")), el("p", { class: "error" }, r.json.error === "busy" ? t("r_busy") : t("error", { msg: r.json.message || r.status }))); return; }
    const j = r.json;
    root.replaceChildren(el("h2", {}, t("stats")),
      el("section", { id: "stats-env" }, drawBlocks(j.environment)),
      el("section", { id: "stats-top" }, el("h3", {}, t("s_top")), drawBlocks(j.top_hosts)),
      el("section", { id: "stats-capture" }, el("h3", {}, t("s_health")),
        el("div", { class: "cols" }, j.status.map((s) => el("div", {}, el("h4", {}, s.title),
          el("table", { class: "kv" }, el("tbody", {}, s.rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))))))),
      j.bad_sessions ? el("p", { class: "error" }, t("s_bad", { n: j.bad_sessions })) : null);
  }

  // ---- ユーザ管理 (admin) ------------------------------------------------------------
  async function pageUsers() {
    const r = await api("/api/users");
    const root = $("#page");
    if (!r.ok) { root.replaceChildren(el("p", { class: "error" }, r.status === 403 ? t("forbidden") : t("error", { msg: r.json.message || r.status }))); return; }
    const msg = el("p", { id: "users-msg", role: "alert" });
    const reload = () => { location.hash = "#users?r=" + Date.now() % 100000; };
    const change = async (name, body) => {
      const x = await api("/api/users/" + encodeURIComponent(name), { method: "POST", body });
      if (x.ok) { reload(); } else msg.textContent = t("error", { msg: x.json.message || x.status });
    };
    const roles = ["viewer", "analyst", "admin"];
    const rows = r.json.users.map((u) => {
      const pw = el("input", { type: "password", class: "u-pw", autocomplete: "new-password", "aria-label": t("new_password") });
      return el("tr", { "data-user": u.name, class: u.disabled ? "off" : "" },
        el("td", {}, u.name),
        el("td", {}, el("select", { class: "u-role", onchange: (ev) => change(u.name, { role: ev.target.value }) },
          roles.map((x) => el("option", { value: x, selected: x === u.role }, x)))),
        el("td", {}, u.lang), el("td", {}, u.disabled ? t("k_off") : t("k_on")), el("td", {}, u.locked ? t("u_locked") : ""),
        el("td", {}, u.failed_logins),
        el("td", { class: "actions" },
          el("button", { type: "button", class: "u-toggle", onclick: () => change(u.name, { disabled: !u.disabled }) }, t(u.disabled ? "k_enable" : "k_disable")), " ",
          pw, " ", el("button", { type: "button", class: "u-reset", onclick: () => { if (pw.value) change(u.name, { password: pw.value }); } }, t("u_reset")), " ",
          el("button", { type: "button", class: "u-remove", onclick: async () => {
            if (!confirm(t("u_confirm_remove", { name: u.name }))) return;
            const x = await api("/api/users/" + encodeURIComponent(u.name), { method: "DELETE" });
            if (x.ok) reload(); else msg.textContent = t("error", { msg: x.json.message || x.status });
          } }, t("k_delete"))));
    });
    const name = el("input", { id: "u-name", required: true, maxlength: 64 });
    const role = el("select", { id: "u-role" }, roles.map((x) => el("option", { value: x }, x)));
    const lang = el("select", { id: "u-lang" }, ["ja", "en"].map((x) => el("option", { value: x }, x)));
    const pass = el("input", { id: "u-password", type: "password", autocomplete: "new-password", required: true });
    const form = el("form", { id: "user-form", class: "grid", onsubmit: async (ev) => {
      ev.preventDefault();
      const x = await api("/api/users", { method: "POST", body: { name: name.value, role: role.value, lang: lang.value, password: pass.value } });
      if (x.ok) reload(); else msg.textContent = t("error", { msg: x.json.message || x.status });
    } },
      el("label", { for: "u-name" }, t("user")), name, el("label", { for: "u-role" }, t("u_role")), role,
      el("label", { for: "u-lang" }, t("r_lang")), lang, el("label", { for: "u-password" }, t("password")), pass,
      el("span", {}), el("span", {}, el("button", { type: "submit", id: "u-add" }, t("k_add"))));
    root.replaceChildren(el("div", {}, el("h2", {}, t("users")),
      el("div", { class: "scroll" }, el("table", { class: "hits", id: "users" },
        el("thead", {}, el("tr", {}, ["user", "u_role", "r_lang", "k_enabled", "u_lock", "u_failed", ""].map((k) => el("th", {}, k ? t(k) : "")))),
        el("tbody", {}, rows))),
      el("h3", {}, t("u_add_title")), form, msg));
  }

  // ---- 閲覧ログ ----------------------------------------------------------------------
  async function pageAudit(args) {
    const p = new URLSearchParams();
    for (const k of ["user", "action"]) if (args.get(k)) p.set(k, args.get(k));
    const r = await api("/api/audit?" + p);
    const root = $("#page");
    if (!r.ok) { root.replaceChildren(el("p", { class: "error" }, r.status === 403 ? t("forbidden") : t("error", { msg: r.status }))); return; }
    const v = r.json.verify;
    const user = el("input", { id: "f-user", value: args.get("user") || "", "aria-label": t("a_user") });
    const action = el("input", { id: "f-action", value: args.get("action") || "", "aria-label": t("a_action") });
    root.replaceChildren(el("h2", {}, t("audit")),
      el("p", { id: "chain", class: v.ok ? "ok" : "error" }, v.ok ? t("chain_ok", { n: v.lines }) : t("chain_bad", { line: v.broken_line, why: v.problem })),
      el("form", { onsubmit: (ev) => { ev.preventDefault(); location.hash = "#audit?" + new URLSearchParams({ user: user.value, action: action.value }); } },
        t("a_user"), " ", user, " ", t("a_action"), " ", action, " ", el("button", { type: "submit" }, t("filter"))),
      el("div", { class: "scroll" }, el("table", { class: "hits", id: "audit" },
        el("thead", {}, el("tr", {}, ["a_time", "a_user", "a_addr", "a_action", "a_detail"].map((k) => el("th", {}, t(k))))),
        el("tbody", {}, r.json.entries.map((e) => el("tr", {}, el("td", {}, e.time), el("td", {}, e.user), el("td", {}, e.addr),
          el("td", {}, e.action), el("td", {}, JSON.stringify(e.detail))))))));
  }

  // ---- パスワード変更 -----------------------------------------------------------------
  function pagePassword() {
    const f = (id, key, ac) => [el("label", { for: id }, t(key)), el("input", { id, type: "password", autocomplete: ac, required: true })];
    const msg = el("p", { id: "pw-msg", role: "alert" });
    $("#page").replaceChildren(el("div", {}, el("h2", {}, t("change_password")),
      me.must_change ? el("p", { class: "error", id: "must-change" }, t("must_change")) : null,
      el("form", { class: "stack", id: "pw-form", onsubmit: async (ev) => {
        ev.preventDefault();
        if ($("#pw-new").value !== $("#pw-new2").value) { msg.textContent = t("mismatch"); return; }
        const r = await api("/api/password", { method: "POST", body: { old: $("#pw-old").value, new: $("#pw-new").value } });
        if (r.ok) { const was = me.must_change; me = r.json; if (was) { location.hash = "#search"; render(); } else msg.textContent = t("saved"); } else msg.textContent = t("error", { msg: r.json.message || r.status });
      } }, f("pw-old", "old_password", "current-password"), f("pw-new", "new_password", "new-password"),
      f("pw-new2", "new_password2", "new-password"), el("button", { type: "submit" }, t("save")), msg)));
  }


  // ---- 資産 (asset inventory) -----------------------------------------------------------
  const sessionLink = (id, cls) => id ? el("a", { href: "#session/" + encodeURIComponent(id), class: cls || "evidence-link", title: id }, t("evidence")) : "";
  async function pageAssets(args) {
    const q = args.get("q") || "";
    const root = $("#page");
    const r = await api("/api/assets?" + new URLSearchParams({ q }));
    if (!r.ok) { root.replaceChildren(el("h2", {}, t("assets")), el("p", { class: "error" }, t("error", { msg: r.json.message || r.status }))); return; }
    const j = r.json;
    const box = el("input", { id: "asset-filter", value: q, "aria-label": t("filter"), placeholder: t("as_filter_hint") });
    const rows = [];
    for (const h of j.hosts) {
      rows.push(el("tr", { class: "host-row", "data-ip": h.ip },
        el("td", { colspan: 2 }, el("strong", {}, h.ip), h.vpn ? " (VPN)" : ""), el("td", {}, h.mac || ""),
        el("td", { class: "wrap" }, h.names.map((n) => n.name).join(", ")),
        el("td", {}, h.first_local), el("td", {}, h.last_local), el("td", {}, "")));
      for (const s of h.services) rows.push(el("tr", { class: "service-row" },
        el("td", {}, t("as_service")), el("td", {}, `${s.port}/${s.transport}`), el("td", {}, s.protocol),
        el("td", {}, [s.sessions > 0 ? t("as_clients", { n: s.sessions, i: s.internal_clients, o: s.external_clients }) : "",
          s.announced ? (s.sessions > 0 ? " " : "") + t("as_announced", { types: s.announced.join(", ") }) : ""].join("")),
        el("td", {}, ""), el("td", {}, ""), el("td", {}, sessionLink(s.session))));
      for (const f of h.software) {
        const cves = (f.advisories || []).flatMap((a) => a.cves);
        rows.push(el("tr", { class: "software-row" + (f.worst === "vulnerable" ? " vuln" : "") },
          el("td", {}, t("as_software")), el("td", {}, `${f.role} ${f.kind} :${f.port}`),
          el("td", { class: "wrap" }, f.text),
          el("td", { class: "wrap verdict" }, f.worst ? t("as_" + f.worst) + " " + cves.join(" ") : ""),
          el("td", {}, ""), el("td", {}, ""), el("td", {}, sessionLink(f.session))));
      }
    }
    root.replaceChildren(el("h2", {}, t("assets")),
      el("form", { id: "asset-form", onsubmit: (ev) => { ev.preventDefault(); location.hash = "#assets?" + new URLSearchParams({ q: box.value }); } },
        box, " ", el("button", { type: "submit" }, t("filter"))),
      el("p", { id: "asset-summary" }, t("as_summary", { n: j.hosts.length, total: j.total, date: j.list_date }),
        j.enabled ? "" : " " + t("as_off")),
      el("div", { class: "scroll" }, el("table", { class: "hits", id: "assets" },
        el("thead", {}, el("tr", {}, ["as_kind", "as_port", "as_what", "as_detail", "as_first", "as_last", "f_evidence"].map((k) => el("th", {}, t(k))))),
        el("tbody", {}, rows))));
  }

  // ---- 通信中 (open sessions) -----------------------------------------------------------
  // Sessions still in progress (`state:open`), refreshed every OPEN_REFRESH_MS by this
  // script (no inline script, no meta refresh that would reload the whole app).
  const OPEN_REFRESH_MS = 10000;
  let openTimer = null;
  const dur = (s) => { const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60; return `${h}:${String(m).padStart(2, "0")}:${String(x).padStart(2, "0")}`; };
  async function pageOpen(args, _id, auto) {
    const r = await api("/api/open" + (auto ? "?auto=true" : ""));
    const root = $("#page");
    if (!location.hash.startsWith("#open")) return;
    if (!r.ok) { root.replaceChildren(el("h2", {}, t("open")), el("p", { class: "error" }, t("error", { msg: r.json.message || r.status }))); return; }
    const j = r.json;
    root.replaceChildren(el("h2", {}, t("open")),
      el("p", { id: "open-summary" }, t("op_summary", { n: j.total, at: new Date().toLocaleTimeString(me.lang === "ja" ? "ja-JP" : "en-GB") })),
      el("div", { class: "scroll" }, el("table", { class: "hits", id: "open-sessions" },
        el("thead", {}, el("tr", {}, ["c_time", "op_for", "c_protocol", "c_client", "c_server", "c_host", "c_bytes", "c_packets", ""].map((k) => el("th", {}, k ? t(k) : "")))),
        el("tbody", {}, j.hits.map((h) => el("tr", {},
          el("td", {}, h.time_local), el("td", { class: "num open-for" }, dur(h.open_for_s || 0)), el("td", {}, h.protocol),
          el("td", {}, `${h.client.ip}:${h.client.port}${h.client_vpn ? " (VPN)" : ""}`), el("td", {}, `${h.server.ip}:${h.server.port}${h.server_vpn ? " (VPN)" : ""}`),
          el("td", {}, COLUMNS[5].get(h)), el("td", { class: "num" }, `${h.bytes_up} / ${h.bytes_down}`), el("td", { class: "num" }, h.packets),
          el("td", {}, el("a", { href: "#session/" + encodeURIComponent(h.id), class: "detail-link" }, t("detail")))))))));
    clearTimeout(openTimer);
    openTimer = setTimeout(() => { if (location.hash.startsWith("#open")) pageOpen(args, _id, true); }, OPEN_REFRESH_MS);
  }

  // ---- 警報 (alarms) ---------------------------------------------------------------------
  async function pageAlarms() {
    const r = await api("/api/alarms");
    const root = $("#page");
    if (!r.ok) { root.replaceChildren(el("p", { class: "error" }, t("error", { msg: r.json.message || r.status }))); return; }
    const j = r.json;
    const msg = el("p", { id: "alarm-msg", role: "status" });
    const ack = j.may_acknowledge && j.latched > 0 ? el("button", { type: "button", id: "alarm-ack", onclick: async () => {
      const x = await api("/api/alarms/ack", { method: "POST" });
      if (x.ok) { location.hash = "#alarms?r=" + Date.now() % 100000; } else msg.textContent = t("error", { msg: x.json.message || x.status });
    } }, t("al_ack")) : null;
    root.replaceChildren(el("div", {}, el("h2", {}, t("alarms")),
      el("p", { id: "alarm-summary", class: j.latched ? "error" : "ok" }, t("al_summary", { n: j.latched })), ack, msg,
      j.log_error ? el("p", { class: "error" }, j.log_error) : null,
      el("div", { class: "scroll" }, el("table", { class: "hits", id: "alarms" },
        el("thead", {}, el("tr", {}, ["al_kind", "al_subject", "al_state", "al_since", "a_detail"].map((k) => el("th", {}, t(k))))),
        el("tbody", {}, j.alarms.map((a) => el("tr", { class: a.latched ? "latched" : "" },
          el("td", {}, t("alk_" + a.kind)), el("td", {}, a.subject),
          el("td", {}, (a.active ? t("al_active") : t("al_over")) + " / " + (a.latched ? t("al_latched") : t("al_acked", { who: a.acknowledged_by, at: a.acknowledged_at_local }))),
          el("td", {}, a.since_local || ""), el("td", { class: "wrap" }, (me && me.lang === "en") ? a.detail : (a.detail_ja || a.detail)))))))));
  }

  // The header's alarm count, asked again on every page change and every ALARM_REFRESH_MS.
  const ALARM_REFRESH_MS = 30000;
  async function alarmBadge() {
    const b = $("#alarm-badge");
    const r = await api("/api/alarms");
    if (!r.ok) { b.textContent = ""; return; }
    b.textContent = t("al_badge", { n: r.json.latched });
    b.className = r.json.latched ? "alarm-badge on" : "alarm-badge";
  }

  const PAGES = {
    search: { label: "search", role: "viewer", render: pageSearch },
    conditions: { label: "conditions", role: "viewer", render: pageConditions },
    findings: { label: "findings", role: "viewer", render: pageFindings },
    open: { label: "open", role: "viewer", render: pageOpen },
    assets: { label: "assets", role: "viewer", render: pageAssets },
    alarms: { label: "alarms", role: "viewer", render: pageAlarms },
    stats: { label: "stats", role: "viewer", render: pageStats },
    report: { label: "report", role: "viewer", render: pageReport },
    session: { label: null, role: "viewer", render: pageSession },
    users: { label: "users", role: "admin", render: pageUsers },
    audit: { label: "audit", role: "admin", render: pageAudit },
    password: { label: "change_password", role: "viewer", render: pagePassword },
  };

  function render() {
    const h = location.hash.replace(/^#/, "") || "search";
    const [path, qs] = h.split("?");
    const [name, ...rest] = path.split("/");
    // A one-time password: nothing but the password change until it is changed.
    const page = me.must_change ? PAGES.password : (PAGES[name] || PAGES.search);
    $("#nav").replaceChildren(...Object.entries(PAGES).filter(([n, p]) => p.label && ROLES[me.role] >= ROLES[p.role] && (!me.must_change || n === "password"))
      .map(([n, p]) => el("a", { href: "#" + n, class: n === name ? "on" : "" }, t(p.label))));
    $("#who").textContent = `${me.user} (${me.role})`;
    $("#lang-toggle").textContent = me.lang === "ja" ? "English" : "日本語";
    document.querySelectorAll("[data-t]").forEach((e) => { e.textContent = t(e.dataset.t); });
    document.documentElement.lang = me.lang;
    if (page !== PAGES.open) clearTimeout(openTimer);
    if (!me.must_change) alarmBadge();
    page.render(new URLSearchParams(qs || ""), decodeURIComponent(rest.join("/")));
  }

  async function start() {
    const r = await api("/api/me");
    me = r.json;
    $("#logout").addEventListener("click", async () => { await api("/api/logout", { method: "POST" }); location.href = "/login"; });
    $("#lang-toggle").addEventListener("click", async () => {
      const lang = me.lang === "ja" ? "en" : "ja";
      const r2 = await api("/api/lang", { method: "POST", body: { lang } });
      if (r2.ok) { me.lang = lang; localStorage.setItem("kuroko-lang", lang); render(); }
    });
    window.addEventListener("hashchange", render);
    // The alarm count in the header stays current on a page left open.
    setInterval(() => { if (!me.must_change) alarmBadge(); }, ALARM_REFRESH_MS);
    render();
  }
  start();
})();
