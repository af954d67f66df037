// The run page's screen: the latest frame while the run moves (run.frame over the page's one
// EventSource, relayed by live.js), the step in flight and the run's time, and afterwards a replay:
// a filmstrip in step with the timeline, before/after screens with the acted-on element outlined,
// arrow keys to step through.
(function () {
  "use strict";
  var panel = document.getElementById("run-screen");
  if (!panel) return;
  var runId = panel.getAttribute("data-run-id");
  var strip = document.getElementById("filmstrip");
  var before = document.getElementById("shot-before");
  var after = document.getElementById("shot-after");
  var capBefore = document.getElementById("cap-before");
  var capAfter = document.getElementById("cap-after");
  var outline = panel.querySelector(".acted");
  var inflight = document.getElementById("step-in-flight");
  var runClock = document.getElementById("run-elapsed");
  var status = panel.getAttribute("data-status");
  var startedAt = Date.parse(panel.getAttribute("data-started-at") || "") || null;
  var endedAt = Date.parse(panel.getAttribute("data-ended-at") || "") || null;
  // While the run moves the page follows the newest frame, until someone picks a step.
  var following = true;
  var current = null;
  var TERMINAL = { success: 1, failed: 1, cancelled: 1, timeout: 1 };

  function frameUrl(name) {
    return "/runs/" + encodeURIComponent(runId) + "/artifacts/" + encodeURIComponent(name);
  }

  function films() {
    return Array.prototype.slice.call(strip.querySelectorAll("button.film"));
  }

  function seqOf(film) { return parseInt(film.getAttribute("data-seq"), 10); }

  function json(text) {
    if (!text) return null;
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  function label(film) {
    var seq = seqOf(film);
    if (!seq) return "Before the first step";
    var node = film.getAttribute("data-node");
    return "After step " + seq + (node ? " " + node : "") + (film.getAttribute("data-outcome") === "failed" ? " (failed)" : "");
  }

  function show(film) {
    if (!film) return;
    var list = films();
    var index = list.indexOf(film);
    var previous = index > 0 ? list[index - 1] : null;
    current = film;
    list.forEach(function (f) { f.classList.toggle("current", f === film); f.setAttribute("aria-current", f === film ? "true" : "false"); });
    after.src = frameUrl(film.getAttribute("data-name"));
    after.setAttribute("data-seq", String(seqOf(film)));
    capAfter.textContent = label(film);
    if (previous) {
      before.src = frameUrl(previous.getAttribute("data-name"));
      before.setAttribute("data-seq", String(seqOf(previous)));
      before.parentNode.hidden = false;
      capBefore.textContent = seqOf(film) ? "Before step " + seqOf(film) : "";
    } else {
      before.removeAttribute("src");
      before.parentNode.hidden = true;
      capBefore.textContent = "";
    }
    // The element the step acted on, on the screen it was found on (the one before the step).
    var bounds = json(film.getAttribute("data-bounds"));
    var screen = json(film.getAttribute("data-screen"));
    if (bounds && screen && previous) {
      outline.style.left = (100 * bounds[0] / screen[0]) + "%";
      outline.style.top = (100 * bounds[1] / screen[1]) + "%";
      outline.style.width = (100 * (bounds[2] - bounds[0]) / screen[0]) + "%";
      outline.style.height = (100 * (bounds[3] - bounds[1]) / screen[1]) + "%";
      outline.hidden = false;
    } else {
      outline.hidden = true;
    }
    film.scrollIntoView({ block: "nearest", inline: "nearest" });
    markTimeline();
  }

  function markTimeline() {
    var seq = current ? seqOf(current) : -1;
    document.querySelectorAll(".timeline li.step[data-seq]").forEach(function (li) {
      li.classList.toggle("current", parseInt(li.getAttribute("data-seq"), 10) === seq);
    });
  }

  function filmFor(seq) {
    // The screen after step `seq`, or the latest one before it (a step that touched no phone has none).
    var chosen = null;
    films().forEach(function (f) { if (seqOf(f) <= seq) chosen = f; });
    return chosen;
  }

  function pick(film) {
    following = false;
    show(film);
  }

  function addFrame(frame) {
    if (strip.querySelector('button.film[data-name="' + frame.name + '"]')) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "film";
    button.setAttribute("data-seq", String(frame.seq));
    button.setAttribute("data-name", frame.name);
    button.setAttribute("data-node", frame.nodeId || "");
    button.setAttribute("data-kind", frame.kind || "");
    button.setAttribute("data-outcome", frame.outcome || "");
    button.setAttribute("data-bounds", frame.bounds ? JSON.stringify(frame.bounds) : "");
    button.setAttribute("data-screen", frame.screen ? JSON.stringify(frame.screen) : "");
    var img = document.createElement("img");
    img.alt = "";
    img.src = frameUrl(frame.name);
    var span = document.createElement("span");
    span.textContent = frame.seq ? String(frame.seq) : "start";
    button.appendChild(img);
    button.appendChild(span);
    var li = document.createElement("li");
    li.appendChild(button);
    // In seq order, whatever order the frames arrive in.
    var later = films().filter(function (f) { return seqOf(f) > frame.seq; })[0];
    strip.insertBefore(li, later ? later.parentNode : null);
    panel.querySelector(".screens").hidden = false;
    panel.querySelector(".no-frames").hidden = true;
    panel.querySelector(".keys-hint").hidden = false;
    if (following) show(filmFor(Number.MAX_SAFE_INTEGER));
  }

  function elapsed(ms) {
    if (ms < 0) ms = 0;
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    var s = Math.floor(ms / 1000);
    return Math.floor(s / 60) + " min " + (s % 60) + " s";
  }

  function tick() {
    if (startedAt && !TERMINAL[status]) runClock.textContent = elapsed(Date.now() - startedAt);
    else if (startedAt && endedAt) runClock.textContent = elapsed(endedAt - startedAt);
    if (!inflight.hidden) {
      var from = Date.parse(inflight.getAttribute("data-started-at") || "");
      if (from) inflight.querySelector(".if-elapsed").textContent = elapsed(Date.now() - from);
    }
  }

  strip.addEventListener("click", function (event) {
    var film = event.target.closest && event.target.closest("button.film");
    if (film) pick(film);
  });
  // A step chosen in the timeline shows its screens (the timeline is swapped by live.js: delegate).
  document.addEventListener("click", function (event) {
    var li = event.target.closest && event.target.closest(".timeline li.step[data-seq]");
    if (!li || event.target.closest("a, button, form")) return;
    var film = filmFor(parseInt(li.getAttribute("data-seq"), 10));
    if (film) pick(film);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var list = films();
    if (!list.length) return;
    var index = current ? list.indexOf(current) : list.length - 1;
    index += event.key === "ArrowLeft" ? -1 : 1;
    if (index < 0 || index >= list.length) return;
    event.preventDefault();
    pick(list[index]);
  });

  document.addEventListener("phoneflow:run.frame", function (event) {
    var frame = event.detail;
    if (!frame || frame.id !== runId || !frame.name) return;
    if (frame.live) {
      // The screen between steps (the Live toggle): shown while the page follows the run, not kept.
      if (!following || TERMINAL[status]) return;
      panel.querySelector(".screens").hidden = false;
      panel.querySelector(".no-frames").hidden = true;
      after.src = frameUrl(frame.name) + "?at=" + encodeURIComponent(frame.takenAt || String(Date.now()));
      capAfter.textContent = "Live";
      return;
    }
    if (typeof frame.seq === "number") addFrame(frame);
  });
  document.addEventListener("phoneflow:run.step", function (event) {
    var step = event.detail;
    if (!step || step.id !== runId || TERMINAL[status]) return;
    inflight.setAttribute("data-seq", String(step.seq));
    inflight.setAttribute("data-started-at", step.startedAt || "");
    inflight.querySelector(".if-seq").textContent = String(step.seq);
    inflight.querySelector(".if-node").textContent = step.nodeId || "";
    inflight.hidden = false;
    tick();
  });
  document.addEventListener("phoneflow:run.updated", function (event) {
    var run = event.detail;
    if (!run || run.id !== runId) return;
    status = run.status;
    panel.setAttribute("data-status", status);
    if (run.startedAt) startedAt = Date.parse(run.startedAt) || startedAt;
    if (run.endedAt) endedAt = Date.parse(run.endedAt) || endedAt;
    var seq = parseInt(inflight.getAttribute("data-seq"), 10) || 0;
    if (TERMINAL[status] || (run.traceLen || 0) >= seq) inflight.hidden = true;
    if (TERMINAL[status]) {
      var toggle = document.getElementById("live-toggle");
      if (toggle) toggle.closest("form").hidden = true;
    }
    tick();
  });
  document.addEventListener("phoneflow:swapped", markTimeline);

  var list = films();
  if (list.length) show(TERMINAL[status] ? list[0] : list[list.length - 1]);
  if (TERMINAL[status]) following = false;
  tick();
  setInterval(tick, 100);
})();
