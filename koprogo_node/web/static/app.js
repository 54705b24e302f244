// The dashboard's script: live figures on the overview, and every change
// (log in, alerts, settings, users, tokens) through the JSON API with the
// session's CSRF token. Plain browser JavaScript, nothing loaded from outside.
"use strict";
const texts = JSON.parse(document.getElementById("texts").textContent);
const lang = document.documentElement.lang;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const t = (key) => texts[key] || key;
const fmt = (v, d) => v === null || v === undefined ? "–" :
  Number(v).toLocaleString(lang + "-BE", {maximumFractionDigits: d});
const byId = (id) => document.getElementById(id);
const set = (id, text) => { const el = byId(id); if (el) el.textContent = text; };

async function api(method, path, body) {
  const options = {method, headers: {"X-CSRF-Token": csrf}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(path, options);
  if (answer.ok) return answer.status === 204 ? {} : answer.json();
  let message = answer.status + " " + answer.statusText;
  try { message = (await answer.json()).error || message; } catch (e) { /* text */ }
  throw new Error(message);
}

// Submit a form through `send(fields)`; show its error in the form, else reload.
function onSubmit(id, send) {
  const form = byId(id);
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = Object.fromEntries(new FormData(form));
    const error = form.querySelector(".error");
    try {
      if (await send(fields, form, event.submitter) !== false) location.reload();
    } catch (e) { if (error) error.textContent = e.message; }
  });
}

function loginForms() {
  const goOn = (form) => { location.href = form.dataset.next || "/"; return false; };
  onSubmit("login", async (f, form) => {
    await api("POST", "/api/v1/session", {username: f.username, password: f.password});
    return goOn(form);
  });
  onSubmit("setup", async (f, form) => {
    await api("POST", "/api/v1/setup", f);
    return goOn(form);
  });
  const logout = byId("logout");
  if (logout) logout.addEventListener("click", async () => {
    await api("DELETE", "/api/v1/session");
    location.href = "/login";
  });
}

async function overview() {
  try {
    const b = await api("GET", "/api/v1/building");
    const s = await api("GET", "/api/v1/status");
    set("power", fmt(b.power_kw, 2));
    set("elec", fmt(b.today.electricity_import, 1));
    set("elec-usual", fmt(b.usual.electricity_import, 1));
    set("export", fmt(b.today.electricity_export, 1));
    set("water", fmt((b.today.water || 0) * 1000, 0));
    set("water-usual", b.usual.water === undefined ? "–" : fmt(b.usual.water * 1000, 0));
    set("gas", fmt(b.today.gas, 2));
    set("gas-usual", fmt(b.usual.gas, 2));
    set("data-time", b.data_time_ms ?
      new Date(b.data_time_ms).toLocaleString(lang + "-BE") : t("no data yet"));
    set("ingest", fmt(s.ingest.rate_per_s, 1) + " " + t("readings/s"));
    set("height", s.ledger.height);
    const rejects = Object.entries(s.ingest.rejects_by_reason)
      .filter(([reason]) => reason !== "already_stored")
      .reduce((sum, [, n]) => sum + n, 0);
    set("rejects", rejects);
  } catch (e) { set("ingest", t("node unreachable")); }
}

async function openAlerts() {
  try {
    const a = await api("GET", "/api/v1/alerts?state=active");
    const items = a.alerts.map((x) => {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/alerts";
      link.textContent = t(x.kind) + " · " + x.sensor;
      const since = new Date(x.start_ts * 1000).toLocaleString(lang + "-BE");
      li.append(link, " · " + t(x.severity) + " · " + since);
      return li;
    });
    byId("alerts").replaceChildren(...items);
    byId("alerts-none").hidden = items.length > 0;
  } catch (e) { /* the status line already says the node is unreachable */ }
}

function alertActions() {
  document.querySelectorAll("form.alert-actions").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const id = form.closest("[data-alert]").dataset.alert;
      const action = event.submitter.value;
      const note = form.elements.note.value;
      try {
        await api("POST", `/api/v1/alerts/${encodeURIComponent(id)}/${action}`,
          {note});
        location.reload();
      } catch (e) { form.querySelector(".error").textContent = e.message; }
    });
  });
}

function settingsForms() {
  onSubmit("settings", async (fields, form) => {
    const numbers = Object.fromEntries(
      Object.entries(fields).map(([name, value]) => [name, Number(value)]));
    await api("PUT", "/api/v1/settings", numbers);
    form.querySelector(".error").textContent = t("Saved.");
    return false;
  });
  onSubmit("new-user", (f) => api("POST", "/api/v1/users", f));
  onSubmit("new-token", async (f) => {
    const made = await api("POST", "/api/v1/tokens", f);
    byId("token-secret").textContent = made.token;
    return false;
  });
  document.querySelectorAll("button.save-meter").forEach((button) => {
    button.addEventListener("click", async () => {
      const row = button.closest("[data-meter]");
      const field = (name) => row.querySelector(`[name=${name}]`);
      const said = row.querySelector(".error");
      const path = "/api/v1/settings/meters/" + encodeURIComponent(row.dataset.meter);
      try {
        await api("PUT", path, {label: field("label").value,
                                watched: field("watched").checked});
        said.textContent = t("Saved.");
      } catch (e) { said.textContent = e.message; }
    });
  });
  const remove = async (path) => {
    try { await api("DELETE", path); location.reload(); } catch (e) { alert(e.message); }
  };
  document.querySelectorAll("[data-delete-user]").forEach((button) =>
    button.addEventListener("click", () =>
      remove("/api/v1/users/" + encodeURIComponent(button.dataset.deleteUser))));
  document.querySelectorAll("[data-delete-token]").forEach((button) =>
    button.addEventListener("click", () =>
      remove("/api/v1/tokens/" + encodeURIComponent(button.dataset.deleteToken))));
}

loginForms();
alertActions();
settingsForms();
if (document.body.dataset.page === "/") {
  overview(); setInterval(overview, 2000);
  openAlerts(); setInterval(openAlerts, 5000);
  const chart = () => `/chart.svg?hours=24&lang=${lang}&t=${Date.now()}`;
  setInterval(() => { byId("chart").src = chart(); }, 10000);
}
