/* pushdesk editor console: compose, preview, check the audience, confirm, send, follow. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var KEY = "pushdesk.editorKey";
  var FINAL = ["done", "cancelled", "failed"];
  var COUNTS = ["audience", "delivered", "removed", "failed", "skipped", "deferred"];
  var state = { current: null, idempotencyKey: null, timer: null, topicsLoaded: false };

  function key() { return sessionStorage.getItem(KEY); }

  function api(method, path, body, extraHeaders) {
    var headers = Object.assign({ Authorization: "Bearer " + key() }, extraHeaders || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: method, headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (resp) {
      return resp.json().then(function (data) {
        if (!resp.ok) {
          var err = new Error((data.error && data.error.message) || resp.statusText);
          err.status = resp.status;
          err.code = data.error && data.error.code;
          throw err;
        }
        return data;
      });
    });
  }

  // ---- sign in ----------------------------------------------------------------------
  function showDesk(on) {
    $("login").hidden = on;
    $("desk").hidden = !on;
    $("sign-out").hidden = !on;
    if (on) { loadTopics(); refreshHistory(); }
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    api("GET", "/api/alerts?limit=1").then(function () {
      $("login-error").textContent = "";
      showDesk(true);
    }).catch(function (err) {
      sessionStorage.removeItem(KEY);
      $("login-error").textContent = err.status === 401 ? "That key is not valid." : err.message;
    });
  });

  $("sign-out").addEventListener("click", function () {
    sessionStorage.removeItem(KEY);
    showDesk(false);
  });

  // ---- compose and preview ----------------------------------------------------------
  function loadTopics() {
    if (state.topicsLoaded) return;
    state.topicsLoaded = true;
    fetch("/api/topics").then(function (r) { return r.json(); }).then(function (data) {
      data.topics.forEach(function (topic) {
        var label = document.createElement("label");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.value = topic.id;
        box.checked = topic.id === "breaking";
        box.addEventListener("change", resetConfirm);
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + topic.name));
        $("topics").appendChild(label);
      });
    });
  }

  function draft() {
    var body = {
      title: $("title").value.trim(),
      url: $("url").value.trim(),
      topics: Array.prototype.map.call(
        document.querySelectorAll("#topics input:checked"), function (el) { return el.value; }),
      ttl: parseInt($("ttl").value, 10),
      urgency: $("urgency").value,
      respectQuietHours: $("quiet").checked,
    };
    if ($("body").value.trim()) body.body = $("body").value.trim();
    if ($("image").value.trim()) body.image = $("image").value.trim();
    return body;
  }

  function preview() {
    var d = draft();
    $("preview-title").textContent = d.title || "Headline";
    $("preview-body").textContent = d.body || "";
    var origin = "";
    try { origin = new URL(d.url).host; } catch (e) { origin = location.host; }
    $("preview-origin").textContent = origin;
    var img = $("preview-image");
    if (d.image && /^https:\/\//.test(d.image)) { img.src = d.image; img.hidden = false; }
    else { img.hidden = true; img.removeAttribute("src"); }
  }

  ["title", "url", "body", "image"].forEach(function (id) {
    $(id).addEventListener("input", function () { preview(); resetConfirm(); });
  });

  function resetConfirm() {
    $("confirm").hidden = true;
    $("confirm-force").hidden = true;
    $("confirm-send").hidden = false;
    state.idempotencyKey = null;
  }

  function fail(err) { $("compose-error").textContent = err.message; }

  function checkAudience() {
    $("compose-error").textContent = "";
    return api("POST", "/api/alerts", Object.assign(draft(), { dryRun: true }))
      .then(function (data) {
        $("audience").textContent = data.audience + " readers will get this alert.";
        return data.audience;
      });
  }

  $("check").addEventListener("click", function () { checkAudience().catch(fail); });

  $("compose").addEventListener("submit", function (event) {
    event.preventDefault();
    checkAudience().then(function (audience) {
      // One key per confirmed draft: a double click cannot send the alert twice.
      state.idempotencyKey = "console-" + Date.now() + "-" + Math.random().toString(36).slice(2);
      $("confirm-text").textContent =
        "Send \u201c" + draft().title + "\u201d to " + audience + " readers now?";
      $("confirm").hidden = false;
    }).catch(fail);
  });

  $("confirm-back").addEventListener("click", resetConfirm);
  $("confirm-send").addEventListener("click", function () { send(false); });
  $("confirm-force").addEventListener("click", function () { send(true); });

  function send(force) {
    var body = draft();
    if (force) body.force = true;
    api("POST", "/api/alerts", body, { "Idempotency-Key": state.idempotencyKey })
      .then(function (alert) {
        resetConfirm();
        $("compose").reset();
        preview();
        follow(alert.id);
      }).catch(function (err) {
        if (err.code === "duplicate") {
          $("confirm-text").textContent = err.message;
          $("confirm-send").hidden = true;
          $("confirm-force").hidden = false;
          state.idempotencyKey = "console-force-" + Date.now();
          return;
        }
        fail(err);
      });
  }

  // ---- progress and history -----------------------------------------------------------
  function follow(alertId) {
    state.current = alertId;
    $("current").hidden = false;
    clearTimeout(state.timer);
    poll();
  }

  function poll() {
    var id = state.current;
    Promise.all([api("GET", "/api/alerts/" + id), api("GET", "/api/alerts/" + id + "/timeline")])
      .then(function (r) {
        showCurrent(r[0]);
        drawChart(r[1].seconds);
        // Engagement keeps coming in after sending ends: keep polling, more slowly.
        state.timer = setTimeout(poll, FINAL.indexOf(r[0].status) < 0 ? 500 : 5000);
        refreshHistory();
      }).catch(fail);
  }

  /* The timeline as three cumulative lines, drawn in the page (no external scripts). */
  function drawChart(seconds) {
    var canvas = $("chart");
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height, pad = 36;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    var last = seconds.length ? seconds[seconds.length - 1] : null;
    var top = Math.max(1, last ? last.delivered : 1);
    var span = Math.max(1, seconds.length);  // row i holds the totals at the end of second i
    ctx.strokeStyle = "#999";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(pad, 8); ctx.lineTo(pad, h - pad); ctx.lineTo(w - 8, h - pad);
    ctx.stroke();
    ctx.fillStyle = "#555";
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText(String(top), 4, 16);
    ctx.fillText("0", 4, h - pad);
    ctx.fillText(span + " s", w - 40, h - pad + 16);
    var x = function (i) { return pad + (w - pad - 8) * (i + 1) / span; };
    var y = function (v) { return h - pad - (h - pad - 8) * v / top; };
    [["clicked", "#1a6bd6"], ["shown", "#333"], ["delivered", "#c70000"]].forEach(function (line) {
      ctx.strokeStyle = line[1];
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.moveTo(pad, y(0));
      seconds.forEach(function (row, i) { ctx.lineTo(x(i), y(row[line[0]])); });
      ctx.stroke();
    });
    canvas.dataset.points = String(seconds.length);
  }

  function showCurrent(alert) {
    var c = alert.counts;
    var worked = c.delivered + c.removed + c.failed + c.skipped + c.deferred;
    var total = Math.max(c.audience, worked, 1);
    $("current-title").textContent = "\u201c" + alert.title + "\u201d";
    $("current-bar").style.width = Math.round(100 * worked / total) + "%";
    $("current-status").textContent = alert.status;
    $("current").dataset.status = alert.status;
    $("current-counts").textContent = COUNTS.map(function (k) { return k + " " + c[k]; }).join(" · ");
    var ms = alert.deliveryMs || {};
    $("current-engagement").textContent = "shown " + c.shown + " · clicked " + c.clicked +
      " · click rate " + rate(alert) + (ms.p50 == null ? "" :
      " · delivered within " + ms.p50 + " ms (p50), " + ms.p90 + " ms (p90), " + ms.p99 + " ms (p99)");
    $("cancel").hidden = FINAL.indexOf(alert.status) >= 0;
  }

  $("cancel").addEventListener("click", function () {
    api("POST", "/api/alerts/" + state.current + "/cancel").then(showCurrent).then(refreshHistory)
      .catch(fail);
  });

  function rate(alert) {
    return alert.clickRate == null ? "–" : (100 * alert.clickRate).toFixed(1) + "%";
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function refreshHistory() {
    return api("GET", "/api/alerts?limit=20").then(function (data) {
      var tbody = document.querySelector("#history tbody");
      tbody.textContent = "";
      data.alerts.forEach(function (alert) {
        var row = document.createElement("tr");
        row.dataset.id = alert.id;
        cell(row, new Date(alert.createdAt).toLocaleString());
        var link = document.createElement("a");
        link.href = alert.url;
        link.rel = "noopener";
        link.textContent = alert.title;
        cell(row, "").appendChild(link);
        cell(row, alert.status);
        COUNTS.forEach(function (k) { cell(row, String(alert.counts[k])); });
        cell(row, alert.counts.clicked + " (" + rate(alert) + ")");
        var action = cell(row, "");
        if (FINAL.indexOf(alert.status) < 0) {
          var button = document.createElement("button");
          button.type = "button";
          button.textContent = "Follow";
          button.addEventListener("click", function () { follow(alert.id); });
          action.appendChild(button);
        }
        tbody.appendChild(row);
      });
    }).catch(fail);
  }

  preview();
  if (key()) showDesk(true);
})();
