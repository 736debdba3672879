// distillguard console: draws the figures the page carries as JSON, and keeps the accounts table live.
// No inline scripts, no eval: the page's Content-Security-Policy allows scripts from this origin only.
"use strict";

(function () {
  function drawFigures() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
      Plotly.newPlot(el, figure.data || [], figure.layout || {}, config);
    });
  }

  // The live accounts table ------------------------------------------------------------------------------
  function cell(td, value) {
    value = value || {};
    var text = value.text || "";
    var badge = value.badge ? "badge " + value.badge : "";
    var shown = td.firstElementChild;
    var changed = td.textContent !== text || (shown ? shown.className : "") !== badge;
    if (changed) {
      if (badge) {
        var span = document.createElement("span");
        span.className = badge;
        span.textContent = text;
        td.replaceChildren(span);
      } else {
        td.textContent = text;
      }
    }
    td.className = value.cls || "";
    if (value.title) td.title = value.title; else td.removeAttribute("title");
    return changed;
  }

  function newRow(table, row) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-id", row.id);
    var th = document.createElement("th");
    th.scope = "row";
    th.setAttribute("data-col", "account");
    var a = document.createElement("a");
    a.className = "ident";
    a.href = row.href;
    a.textContent = row.id;
    th.appendChild(a);
    tr.appendChild(th);
    table.querySelectorAll("thead th").forEach(function (head, i) {
      if (i === 0) return;
      var td = document.createElement("td");
      td.setAttribute("data-col", table.__columns[i]);
      tr.appendChild(td);
    });
    return tr;
  }

  function applyRows(table, rows) {
    var body = table.tBodies[0];
    var current = Array.prototype.map.call(body.rows, function (tr) { return tr.getAttribute("data-id"); });
    var sameOrder = current.length === rows.length && rows.every(function (r, i) { return r.id === current[i]; });
    var changed = 0;
    if (!sameOrder) {
      // Rebuild in the new order, reusing rows that stay (and keeping focus on a link that had it).
      var focused = document.activeElement && body.contains(document.activeElement)
        ? document.activeElement.closest("tr").getAttribute("data-id") : null;
      var existing = {};
      Array.prototype.forEach.call(body.rows, function (tr) { existing[tr.getAttribute("data-id")] = tr; });
      var fragment = document.createDocumentFragment();
      rows.forEach(function (r) { fragment.appendChild(existing[r.id] || newRow(table, r)); });
      body.replaceChildren(fragment);
      changed += Math.abs(rows.length - current.length) || 1;
      if (focused) {
        var again = body.querySelector('tr[data-id="' + CSS.escape(focused) + '"] a');
        if (again) again.focus();
      }
    }
    rows.forEach(function (r) {
      var tr = body.querySelector('tr[data-id="' + CSS.escape(r.id) + '"]');
      if (!tr) return;
      var rowChanged = false;
      tr.querySelectorAll("td[data-col]").forEach(function (td) {
        if (cell(td, r.cells[td.getAttribute("data-col")])) rowChanged = true;
      });
      if (rowChanged) {
        changed += 1;
        tr.classList.remove("changed");
        void tr.offsetWidth;  // restart the highlight
        tr.classList.add("changed");
      }
    });
    return changed;
  }

  function liveTable(table) {
    var interval = parseInt(table.getAttribute("data-interval"), 10) || 2000;
    var clock = document.querySelector("[data-live-clock]");
    var status = document.querySelector("[data-live-status]");
    var toggle = document.querySelector("[data-live-toggle]");
    var paused = false;
    var timer = null;
    table.__columns = Array.prototype.map.call(table.tBodies[0].rows.length ? table.tBodies[0].rows[0].cells : [],
      function (c) { return c.getAttribute("data-col"); });
    if (!table.__columns.length) {
      table.__columns = ["account", "org", "tier", "risk", "verdict", "standing", "calls", "tokens", "refused", "last_seen"];
    }

    function schedule() {
      clearTimeout(timer);
      if (!paused && !document.hidden) timer = setTimeout(poll, interval);
    }

    function poll() {
      fetch(table.getAttribute("data-live"), { credentials: "same-origin", headers: { accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) {
            paused = true;
            if (clock) clock.textContent = "Session expired: reload the page to log in again.";
            return null;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (payload) {
          if (!payload) return;
          var changed = applyRows(table, payload.rows);
          if (clock) clock.textContent = "Updated " + payload.updated + " UTC";
          if (changed && status) status.textContent = changed + (changed === 1 ? " account" : " accounts") + " changed at " + payload.updated;
          table.setAttribute("data-updated", payload.updated);
        })
        .catch(function () { if (clock) clock.textContent = "Live updates failed; retrying."; })
        .finally(schedule);
    }

    if (toggle) {
      toggle.addEventListener("click", function () {
        paused = !paused;
        toggle.setAttribute("aria-pressed", String(paused));  // pressed: paused (the label stays the same)
        if (!paused) poll(); else clearTimeout(timer);
      });
    }
    document.addEventListener("visibilitychange", function () { if (!document.hidden && !paused) poll(); });
    schedule();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawFigures();
    document.querySelectorAll("table[data-live]").forEach(liveTable);
  });
})();
