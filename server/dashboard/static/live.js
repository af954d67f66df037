// The dashboard's live updates: one EventSource on run.updated; every element with data-live-src
// re-fetches its server-rendered fragment when an event concerns it (an element with
// data-live-devices also on device.updated: a phone came or went, its health changed). Every event
// is also relayed as a `phoneflow:<event>` DOM event (the run page's screen, replay.js, follows
// run.frame and run.step).
(function () {
  "use strict";
  // Forms that need a second thought say so in data-confirm (no inline handlers: the CSP forbids them).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  var live = Array.prototype.slice.call(document.querySelectorAll("[data-live-src]:not([data-live-off])"));
  if (!live.length || !window.EventSource) return;
  var pending = new Map();
  var dot = document.getElementById("live-dot");
  // The newest event the page was rendered with: the stream starts right after it, so an event
  // committed between rendering and connecting is replayed instead of lost.
  var lastId = document.body.getAttribute("data-events-after") || "";
  var retryMs = 1000;

  function signedOut() {
    // The session ended: reloading lands on the sign-in page, which comes back here afterwards.
    window.location.reload();
  }

  var fetchedAt = new Map();

  function refresh(el) {
    if (pending.has(el)) return;
    // Coalesce bursts of events (a running run reports every second) into one fetch; a fragment
    // with data-live-every (ms) is fetched at most that often (the stats cost a query over the
    // whole period, and a busy fleet sends events all the time).
    var every = parseInt(el.getAttribute("data-live-every"), 10) || 0;
    var wait = Math.max(150, every - (Date.now() - (fetchedAt.get(el) || 0)));
    pending.set(el, setTimeout(function () {
      pending.delete(el);
      if (typing(el)) {
        // Someone is typing in a form of this fragment (a device's name, its tags): swapping it
        // now would throw their text away; look again in a moment.
        if (!el.hasAttribute("data-live-held")) {
          el.setAttribute("data-live-held", "");
          el.addEventListener("focusout", function again() {
            el.removeEventListener("focusout", again);
            el.removeAttribute("data-live-held");
            refresh(el);
          });
        }
        return;
      }
      fetchedAt.set(el, Date.now());
      fetch(el.getAttribute("data-live-src"), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) {
          if (r.status === 401) { signedOut(); throw new Error("signed out"); }
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) {
          var before = {};
          el.querySelectorAll("tr[data-run-id]").forEach(function (tr) { before[tr.dataset.runId] = tr.dataset.status; });
          el.innerHTML = html;
          el.dispatchEvent(new CustomEvent("phoneflow:swapped", { bubbles: true }));
          el.querySelectorAll("tr[data-run-id]").forEach(function (tr) {
            if (before[tr.dataset.runId] !== tr.dataset.status) tr.classList.add("flash-row");
          });
        })
        .catch(function () { /* the next event retries */ });
    }, wait));
  }

  function typing(el) {
    var active = document.activeElement;
    return !!active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.type !== "submit";
  }

  function relay(name, data) {
    document.dispatchEvent(new CustomEvent("phoneflow:" + name, { detail: data }));
  }

  function connect() {
    var url = "/dashboard/events" + (lastId ? "?after=" + encodeURIComponent(lastId) : "");
    var source = new EventSource(url);
    source.addEventListener("open", function () {
      retryMs = 1000;
      if (dot) dot.classList.add("on");
    });
    source.addEventListener("run.updated", function (message) {
      var run;
      if (message.lastEventId) lastId = message.lastEventId;
      try { run = JSON.parse(message.data); } catch (e) { return; }
      relay("run.updated", run);
      live.forEach(function (el) {
        var only = el.getAttribute("data-live-run");
        var batch = el.getAttribute("data-live-batch");
        if ((!only || only === run.id) && (!batch || batch === run.batchId)) refresh(el);
      });
    });
    // A phone came or went, or its health changed: the Devices page's table follows it.
    source.addEventListener("device.updated", function (message) {
      var device;
      if (message.lastEventId) lastId = message.lastEventId;
      try { device = JSON.parse(message.data); } catch (e) { return; }
      relay("device.updated", device);
      live.forEach(function (el) { if (el.hasAttribute("data-live-devices")) refresh(el); });
    });
    // A step's screen arrived, a step started: the run page's screen (replay.js) takes them.
    ["run.frame", "run.step"].forEach(function (name) {
      source.addEventListener(name, function (message) {
        if (message.lastEventId) lastId = message.lastEventId;
        try { relay(name, JSON.parse(message.data)); } catch (e) { /* not for us */ }
      });
    });
    source.addEventListener("error", function () {
      if (dot) dot.classList.remove("on");
      // CONNECTING: the browser retries by itself (with Last-Event-ID). CLOSED: it gave up, on an
      // answer that was not a stream, a 401 when the session ended; find out which, then retry.
      if (source.readyState !== EventSource.CLOSED) return;
      fetch(live[0].getAttribute("data-live-src"), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { if (r.status === 401) signedOut(); })
        .catch(function () { /* the server is away: retry below */ });
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }

  connect();
})();
