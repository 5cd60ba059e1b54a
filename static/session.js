// The session's idle timeout, told before it strikes (WCAG 2.2.1): two minutes or more before a
// signed-in session ends unused, a warning with "Stay signed in", which asks the server to keep
// the session (POST /session/extend) without leaving the page. What a person types into a form
// is also kept in this tab (sessionStorage) until the form is sent while signed in, so that
// signing in again after a lapse and coming back to the page brings it back.
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  if (!box) { return; }
  var idle = parseInt(box.getAttribute("data-idle"), 10) * 1000;
  // The server notes a session's use at most once a minute: count from a minute before this
  // page, and warn three minutes before the end so that two at least are left.
  var endsAt = 0, timers = [];
  var form = document.getElementById("session-extend");
  var text = document.getElementById("session-warning-text");
  var gone = document.getElementById("session-expired-text");
  function start() {
    timers.forEach(window.clearTimeout);
    endsAt = Date.now() + idle - 60000;
    box.hidden = true;
    timers = [
      window.setTimeout(warn, idle - 180000),
      window.setTimeout(expired, idle - 60000)
    ];
  }
  function warn() {
    box.hidden = false;
    form.querySelector("button").focus();
  }
  function expired() {
    box.hidden = false;
    text.hidden = true;
    form.hidden = true;
    gone.hidden = false;
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var token = form.querySelector("input[name=csrf_token]").value;
    window.fetch(form.action, {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "X-CSRF-Token": token }
    }).then(function (res) {
      if (res.status === 204) { start(); } else { expired(); }
    }, expired);
  });

  // Typed input, kept per page in this tab.
  var key = "portal-typed:" + window.location.pathname;
  var kept = {};
  try { kept = JSON.parse(window.sessionStorage.getItem(key) || "{}"); } catch (err) { kept = {}; }
  function keepable(el) {
    return el.name && el.name !== "csrf_token" && el.form && el.form !== form
      && (el.form.method || "").toLowerCase() === "post"
      && (el.tagName === "TEXTAREA" || el.tagName === "SELECT"
        || /^(text|email|tel|number|date|url|search)$/.test(el.type));
  }
  // A field by its form's place on the page and its name: several forms may share names.
  function id(el) {
    return Array.prototype.indexOf.call(document.forms, el.form) + ":" + el.name;
  }
  Array.prototype.forEach.call(document.querySelectorAll("textarea, input, select"), function (el) {
    if (keepable(el) && !el.value && typeof kept[id(el)] === "string") { el.value = kept[id(el)]; }
  });
  document.addEventListener("input", function (e) {
    if (!keepable(e.target)) { return; }
    kept[id(e.target)] = e.target.value;
    try { window.sessionStorage.setItem(key, JSON.stringify(kept)); } catch (err) { /* full */ }
  });
  document.addEventListener("submit", function (e) {
    if (e.target !== form && Date.now() < endsAt) { window.sessionStorage.removeItem(key); }
  });
  start();
})();
