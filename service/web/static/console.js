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
    api("GET", "/api/alerts/" + state.current).then(function (alert) {
      showCurrent(alert);
      if (FINAL.indexOf(alert.status) < 0) state.timer = setTimeout(poll, 500);
      refreshHistory();
    }).catch(fail);
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
    $("cancel").hidden = FINAL.indexOf(alert.status) >= 0;
  }

  $("cancel").addEventListener("click", function () {
    api("POST", "/api/alerts/" + state.current + "/cancel").then(showCurrent).then(refreshHistory)
      .catch(fail);
  });

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
