"use strict";
(function () {
  let lang = localStorage.getItem("kuroko-lang") || "ja";
  const t = (k) => window.kt(lang, k);
  function paint() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  }
  function setLang(l, ev) { ev.preventDefault(); lang = l; localStorage.setItem("kuroko-lang", l); paint(); }
  document.getElementById("lang-ja").addEventListener("click", (e) => setLang("ja", e));
  document.getElementById("lang-en").addEventListener("click", (e) => setLang("en", e));
  document.getElementById("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("login-error");
    err.textContent = "";
    const r = await fetch("/api/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ user: document.getElementById("user").value, password: document.getElementById("password").value }),
    });
    if (r.ok) { location.href = "/"; return; }
    const j = await r.json().catch(() => ({}));
    err.textContent = t(j.error === "locked" ? "locked" : "bad_credentials");
  });
  paint();
})();
