/* pushdesk service worker: shows alerts, opens the story on click, renews subscriptions. */
/* global importScripts, pushdesk, clients */
importScripts("/pushdesk.js");

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

function safeUrl(url) {
  try {
    var parsed = new URL(url, self.location.origin);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch (e) {
    return null;
  }
}

function readMessage(event) {
  if (!event.data) return {};
  try {
    var msg = event.data.json();
    return msg && typeof msg === "object" ? msg : {};
  } catch (e) {
    return { body: event.data.text() };
  }
}

self.addEventListener("push", function (event) {
  var msg = readMessage(event);
  var options = {
    body: msg.body || "",
    data: { url: safeUrl(msg.url || "/"), alertId: msg.alertId || null },
  };
  if (msg.icon) options.icon = msg.icon;
  if (msg.image) options.image = msg.image;
  if (msg.badge) options.badge = msg.badge;
  if (msg.tag) options.tag = msg.tag;  // one alert replaces itself, never shows twice
  if (msg.timestamp) options.timestamp = msg.timestamp;
  event.waitUntil(
    self.registration.showNotification(msg.title || "News alert", options)
      .then(function () { return report("shown", msg.alertId); })
  );
});

/* Tell pushdesk a notification was shown or clicked (once per reader and alert). Best effort:
 * engagement figures must never stand between the reader and the story. */
function report(type, alertId) {
  if (!alertId) return Promise.resolve();
  return pushdesk._internal.loadState().then(function (state) {
    if (!state || !state.id) return null;
    return fetch((state.apiBase || "") + "/api/events", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: type, alertId: alertId, subscriptionId: state.id }),
      keepalive: true,
      credentials: "omit",
    });
  }).catch(function () { return null; });
}

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var data = event.notification.data || {};
  var target = safeUrl(data.url || "/");
  if (!target) return;
  event.waitUntil(Promise.all([
    clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if (windows[i].url === target && "focus" in windows[i]) return windows[i].focus();
      }
      return clients.openWindow ? clients.openWindow(target) : null;
    }),
    report("clicked", data.alertId),
  ]));
});

/* Firefox renews subscriptions and tells us; send the new one with the stored token so the
 * reader keeps their preferences. (Chrome does not fire this: pushdesk.status() covers it.) */
self.addEventListener("pushsubscriptionchange", function (event) {
  var internal = pushdesk._internal;
  event.waitUntil(internal.loadState().then(function (state) {
    if (!state) return null;
    return internal.serverKey(state.apiBase).then(function (key) {
      var next = event.newSubscription
        ? Promise.resolve(event.newSubscription)
        : self.registration.pushManager.subscribe(internal.pushOptions(key));
      return next.then(function (sub) { return internal.renew(state, sub, key); });
    });
  }));
});
