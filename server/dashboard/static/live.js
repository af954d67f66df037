// Live updates for the dashboard: one EventSource on run.updated; every element with
// data-live-src re-fetches its server-rendered fragment when an event concerns it.
(function () {
  "use strict";
  var live = Array.prototype.slice.call(document.querySelectorAll("[data-live-src]:not([data-live-off])"));
  if (!live.length || !window.EventSource) return;
  var pending = new Map();

  function refresh(el) {
    if (pending.has(el)) return;
    // Coalesce bursts of events (a running run reports every second) into one fetch.
    pending.set(el, setTimeout(function () {
      pending.delete(el);
      fetch(el.getAttribute("data-live-src"), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
        .then(function (html) {
          var before = {};
          el.querySelectorAll("tr[data-run-id]").forEach(function (tr) { before[tr.dataset.runId] = tr.dataset.status; });
          el.innerHTML = html;
          el.querySelectorAll("tr[data-run-id]").forEach(function (tr) {
            if (before[tr.dataset.runId] !== tr.dataset.status) tr.classList.add("flash-row");
          });
        })
        .catch(function () { /* the next event retries */ });
    }, 150));
  }

  var dot = document.getElementById("live-dot");
  var source = new EventSource("/dashboard/events");
  source.addEventListener("open", function () { if (dot) dot.classList.add("on"); });
  source.addEventListener("error", function () { if (dot) dot.classList.remove("on"); });
  source.addEventListener("run.updated", function (message) {
    var run;
    try { run = JSON.parse(message.data); } catch (e) { return; }
    live.forEach(function (el) {
      var only = el.getAttribute("data-live-run");
      if (!only || only === run.id) refresh(el);
    });
  });
})();
