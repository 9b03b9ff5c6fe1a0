// Seva's workspace script: live updates, presence, and keyboard shortcuts. Every page works
// without it (plain links and forms); this only makes it quicker.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var csrfMeta = document.querySelector('meta[name="seva-csrf"]');
  var csrf = csrfMeta ? csrfMeta.content : "";

  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-Seva-Csrf"] = csrf;
  });

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Seva-Csrf": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: body
    }).catch(function () {});
  }

  var root = document.querySelector("[data-live]");
  var page = root ? root.getAttribute("data-page") : null;
  var conversation = root ? root.getAttribute("data-conversation") : null;

  // ---- live updates ----------------------------------------------------------------------
  var pending = false;
  var timer = null;
  function target() {
    return document.getElementById(page === "inbox" ? "inbox-list" : "live-part");
  }
  function busy(el) {
    var active = document.activeElement;
    if (page === "inbox" && document.querySelector('input[name="ids"]:checked')) return true;
    return active && el.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }
  function refresh() {
    var el = target();
    if (!el || !window.htmx) return;
    if (busy(el)) { pending = true; return; }
    pending = false;
    window.htmx.ajax("GET", el.getAttribute("data-src"), { target: el, swap: "innerHTML" });
  }
  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  document.addEventListener("focusout", function () { if (pending) setTimeout(refresh, 50); });
  document.addEventListener("change", function (e) {
    if (pending && e.target.name === "ids") setTimeout(refresh, 50);
  });

  if (root && window.EventSource) {
    var source = new EventSource(root.getAttribute("data-live"));
    source.addEventListener("changed", soon);
    source.addEventListener("presence", function (e) {
      var p = document.getElementById("presence");
      if (p) p.textContent = JSON.parse(e.data).text;
    });
    // The stream reconnects by itself; on reconnect, catch up with what was missed.
    var opened = false;
    source.addEventListener("open", function () { if (opened) soon(); opened = true; });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // ---- the reply box: typing indicator, clearing after sending ------------------------------
  var typing = false;
  var typingTimer = null;
  function setTyping(now) {
    if (!conversation || now === typing) return;
    typing = now;
    post("/conversations/" + conversation + "/typing", "typing=" + (now ? "1" : "0"));
  }
  document.addEventListener("input", function (e) {
    if (e.target.id !== "reply-text") return;
    setTyping(e.target.value.length > 0);
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { setTyping(false); }, 4000);
  });
  // A refused htmx request (expired form, lost session, server away) says so instead of
  // failing silently.
  document.addEventListener("htmx:responseError", function (e) {
    var notice = document.getElementById("notice");
    var xhr = e.detail.xhr;
    if (notice && xhr) {
      notice.textContent = xhr.responseText || String(xhr.status);
      notice.hidden = false;
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    if (e.detail.elt && e.detail.elt.id === "reply" && xhr && xhr.getResponseHeader("x-seva-clear") === "1") {
      var text = document.getElementById("reply-text");
      if (text) text.value = "";
      setTyping(false);
    }
  });

  // ---- bulk selection ----------------------------------------------------------------------
  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute("data-select-all")) {
      document.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = e.target.checked; });
    }
    if (e.target.hasAttribute("data-submit-on-change") && e.target.value) {
      e.target.form.requestSubmit();
    }
  });

  // ---- keyboard shortcuts (listed on the ? overlay) ----------------------------------------
  var cursor = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-row]")); }
  function move(by) {
    var all = rows();
    if (!all.length) return;
    cursor = Math.max(0, Math.min(all.length - 1, cursor + by));
    all.forEach(function (r, i) { r.classList.toggle("selected", i === cursor); r.setAttribute("aria-selected", i === cursor ? "true" : "false"); });
    all[cursor].scrollIntoView({ block: "nearest" });
    var link = all[cursor].querySelector("a");
    if (link) link.focus({ preventScroll: true });
  }
  function current() { return rows()[cursor]; }
  function click(selector) {
    var el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }
  function replyAs(kind) {
    var radio = document.querySelector('#reply input[name="kind"][value="' + kind + '"]');
    var text = document.getElementById("reply-text");
    if (radio) radio.checked = true;
    if (text) text.focus();
  }
  function help() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest('[data-action="help"]')) help();
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.id === "reply-text") {
      e.preventDefault();
      t.form.requestSubmit();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;
    if (t.closest && t.closest("input, textarea, select, [contenteditable]")) {
      if (e.key === "Escape") t.blur();
      return;
    }
    var handled = true;
    switch (e.key) {
      case "?": help(); break;
      case "/": var box = document.getElementById("search-box"); if (box) box.focus(); break;
      case "j": if (page === "inbox") move(1); else handled = click('a[data-key="j"]'); break;
      case "k": if (page === "inbox") move(-1); else handled = click('a[data-key="k"]'); break;
      case "o":
      case "Enter":
        // Enter on a button or another link does what that element does.
        var onRow = current() && (t === document.body || current().contains(t));
        if (page === "inbox" && onRow && (e.key === "o" || t === document.body)) { var a = current().querySelector("a"); if (a) a.click(); } else handled = false;
        break;
      case "x":
        if (page === "inbox" && current()) { var b = current().querySelector('input[name="ids"]'); if (b) b.click(); } else handled = false;
        break;
      case "r": replyAs("reply"); break;
      case "n": replyAs("note"); break;
      case "a": handled = click('[data-action="assign-me"]'); break;
      case "e": handled = click('[data-action="resolve"]'); break;
      case "u": if (!click('a[data-key="u"]')) window.location.href = "/inbox"; break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });
})();
