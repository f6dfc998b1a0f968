/* The demo reader page: drives the pushdesk widget from real buttons. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };

  function say(text, isError) {
    $("message").textContent = text;
    $("message").className = isError ? "message error" : "message";
  }

  function chosenPreferences() {
    var topics = Array.prototype.map.call(
      document.querySelectorAll("#topics input:checked"), function (el) { return el.value; });
    var cap = $("cap").value;
    return {
      topics: topics,
      quietHours: $("quiet-on").checked
        ? { start: $("quiet-start").value, end: $("quiet-end").value } : null,
      maxPerDay: cap ? parseInt(cap, 10) : null,
    };
  }

  function show(state) {
    var on = state.subscribed;
    $("status").textContent = !state.supported
      ? "This browser cannot receive web notifications."
      : state.permission === "denied"
        ? "Notifications are blocked for this site in your browser settings."
        : on ? "Alerts are on." : "Alerts are off.";
    $("subscribe").hidden = on || !state.supported || state.permission === "denied";
    $("save").disabled = !on;
    $("unsubscribe").hidden = !on;
    document.body.dataset.subscribed = on ? "yes" : "no";
    if (on && state.preferences) fill(state.preferences);
  }

  function fill(prefs) {
    document.querySelectorAll("#topics input").forEach(function (el) {
      el.checked = prefs.topics.indexOf(el.value) >= 0;
    });
    $("quiet-on").checked = !!prefs.quietHours;
    if (prefs.quietHours) {
      $("quiet-start").value = prefs.quietHours.start;
      $("quiet-end").value = prefs.quietHours.end;
    }
    $("cap").value = prefs.maxPerDay || "";
  }

  function loadTopics() {
    return fetch("/api/topics").then(function (r) { return r.json(); }).then(function (data) {
      data.topics.forEach(function (topic) {
        var label = document.createElement("label");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.value = topic.id;
        box.checked = topic.default;
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + topic.name));
        $("topics").appendChild(label);
      });
    });
  }

  function refresh() {
    return pushdesk.status().then(show).catch(function (err) { say(err.message, true); });
  }

  $("subscribe").addEventListener("click", function () {
    say("");
    pushdesk.subscribe(chosenPreferences())
      .then(function () { say("You will get alerts for the topics you chose."); })
      .then(refresh)
      .catch(function (err) { say(err.message, true); });
  });

  $("prefs").addEventListener("submit", function (event) {
    event.preventDefault();
    pushdesk.update(chosenPreferences())
      .then(function (prefs) { fill(prefs); say("Preferences saved."); })
      .catch(function (err) { say(err.message, true); });
  });

  $("unsubscribe").addEventListener("click", function () {
    pushdesk.unsubscribe()
      .then(function () { say("Alerts are off. You can turn them on again at any time."); })
      .then(refresh)
      .catch(function (err) { say(err.message, true); });
  });

  loadTopics().then(refresh);
})();
