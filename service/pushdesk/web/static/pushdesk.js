/* pushdesk widget: subscribe a reader to Web Push alerts and keep their preferences.
 *
 * Embed with <script src="https://push.news.example/pushdesk.js"></script>, then call
 * pushdesk.subscribe({topics: [...]}) from a click handler. No dependencies.
 * The service worker imports this file too, for the shared IndexedDB state.
 */
(function (global) {
  "use strict";

  var DB_NAME = "pushdesk";
  var DB_STORE = "state";
  var STATE_KEY = "subscription";

  var config = { apiBase: "", serviceWorker: "/sw.js", scope: "/" };

  // ---- IndexedDB: {id, token, endpoint, apiBase, applicationServerKey} ------------------
  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = global.indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(DB_STORE); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function idb(mode, action) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(DB_STORE, mode);
        var req = action(tx.objectStore(DB_STORE));
        tx.oncomplete = function () { db.close(); resolve(req && req.result); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function loadState() { return idb("readonly", function (s) { return s.get(STATE_KEY); }); }
  function saveState(state) { return idb("readwrite", function (s) { return s.put(state, STATE_KEY); }); }
  function clearState() { return idb("readwrite", function (s) { return s.delete(STATE_KEY); }); }

  // ---- API ---------------------------------------------------------------------------
  function api(base, method, path, body, token) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(base + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    }).then(function (resp) {
      if (resp.status === 204) return null;
      return resp.json().then(function (data) {
        if (!resp.ok) {
          var err = new Error((data && data.error && data.error.message) || resp.statusText);
          err.status = resp.status;
          err.code = data && data.error && data.error.code;
          throw err;
        }
        return data;
      });
    });
  }

  function base64UrlToBytes(text) {
    var padded = text.replace(/-/g, "+").replace(/_/g, "/");
    padded += "===".slice((padded.length + 3) % 4);
    var raw = global.atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function bytesToBase64Url(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return global.btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function serverKey(base) {
    return api(base, "GET", "/api/vapid-public-key").then(function (d) { return d.publicKey; });
  }

  function pushOptions(key) {
    return { userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key) };
  }

  /* Send a browser subscription that changed (new endpoint or new key) to the server. */
  function renew(state, subscription, key) {
    return api(state.apiBase, "PATCH", "/api/subscriptions/" + state.id,
      { subscription: subscription.toJSON() }, state.token)
      .then(function (prefs) {
        state.endpoint = subscription.endpoint;
        state.applicationServerKey = key;
        return saveState(state).then(function () { return prefs; });
      });
  }

  // ---- page-side widget ----------------------------------------------------------------
  var isWindow = typeof global.window !== "undefined" && global.window === global;

  function supported() {
    return isWindow && "serviceWorker" in navigator && "PushManager" in global &&
      "Notification" in global && "indexedDB" in global;
  }

  function registration() {
    return navigator.serviceWorker.register(config.serviceWorker, { scope: config.scope })
      .then(function () { return navigator.serviceWorker.ready; });
  }

  function unsupportedError() {
    var err = new Error("Web Push is not supported in this browser");
    err.code = "unsupported";
    return err;
  }

  function configure(options) {
    Object.keys(options || {}).forEach(function (k) { config[k] = options[k]; });
    return config;
  }

  function defaultTimezone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { return "UTC"; }
  }

  /* Must run from a user gesture (a click): browsers refuse permission prompts otherwise. */
  function subscribe(prefs) {
    if (!supported()) return Promise.reject(unsupportedError());
    if (Notification.permission === "denied") {
      var denied = new Error("notifications are blocked for this site in the browser settings");
      denied.code = "denied";
      return Promise.reject(denied);
    }
    prefs = Object.assign({ timezone: defaultTimezone() }, prefs || {});
    var base = config.apiBase;
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        var err = new Error("notification permission was not granted");
        err.code = "denied";
        throw err;
      }
      return Promise.all([registration(), serverKey(base), loadState()]);
    }).then(function (r) {
      var reg = r[0], key = r[1], state = r[2];
      return reg.pushManager.subscribe(pushOptions(key)).then(function (sub) {
        var body = Object.assign({ subscription: sub.toJSON() }, prefs);
        // Our own token proves this is our reader, should the endpoint come back with new keys.
        var token = state && state.endpoint === sub.endpoint ? state.token : undefined;
        return api(base, "POST", "/api/subscriptions", body, token).then(function (created) {
          var next = { id: created.id, token: created.token, endpoint: sub.endpoint,
            apiBase: base, applicationServerKey: key };
          return saveState(next).then(function () {
            delete created.token;
            return created;
          });
        });
      });
    });
  }

  function update(prefs) {
    return loadState().then(function (state) {
      if (!state) throw new Error("not subscribed");
      return api(state.apiBase, "PATCH", "/api/subscriptions/" + state.id, prefs, state.token);
    });
  }

  function unsubscribe() {
    return loadState().then(function (state) {
      var serverSide = state
        ? api(state.apiBase, "DELETE", "/api/subscriptions/" + state.id, undefined, state.token)
          .catch(function (err) { if (err.status !== 404) throw err; })
        : Promise.resolve();
      return serverSide.then(function () {
        return supported() ? navigator.serviceWorker.getRegistration(config.scope) : null;
      }).then(function (reg) {
        return reg ? reg.pushManager.getSubscription() : null;
      }).then(function (sub) {
        return sub ? sub.unsubscribe() : true;
      }).then(clearState).then(function () { return true; });
    });
  }

  /* The reader's state, refreshed: a browser subscription that changed behind our back
   * (Chrome fires no pushsubscriptionchange) or one made with a key the server has since
   * rotated away from is renewed here, so preferences carry over. */
  function status() {
    if (!supported()) {
      return Promise.resolve({ supported: false, permission: "unsupported", subscribed: false });
    }
    var result = { supported: true, permission: Notification.permission, subscribed: false };
    return Promise.all([loadState(), registration()]).then(function (loaded) {
      var state = loaded[0];
      if (!state) return result;
      return Promise.resolve(loaded[1]).then(function (reg) {
        return Promise.all([reg ? reg.pushManager.getSubscription() : null,
          serverKey(state.apiBase), reg]);
      }).then(function (r) {
        return refresh(state, r[0], r[1], r[2]);
      }).then(function () {
        return api(state.apiBase, "GET", "/api/subscriptions/" + state.id, undefined, state.token);
      }).then(function (prefs) {
        result.subscribed = true;
        result.id = state.id;
        result.preferences = prefs;
        return result;
      }).catch(function (err) {
        if (err.status === 404) return clearState().then(function () { return result; });
        throw err;
      });
    });
  }

  function refresh(state, sub, key, reg) {
    if (!reg || Notification.permission !== "granted") return Promise.resolve();
    var subKey = sub && sub.options && sub.options.applicationServerKey
      ? bytesToBase64Url(sub.options.applicationServerKey) : state.applicationServerKey;
    if (sub && subKey === key && sub.endpoint === state.endpoint) return Promise.resolve();
    var fresh = (sub && subKey !== key) ? sub.unsubscribe() : Promise.resolve();
    return fresh.then(function () {
      return sub && subKey === key ? sub : reg.pushManager.subscribe(pushOptions(key));
    }).then(function (next) { return renew(state, next, key); });
  }

  global.pushdesk = {
    configure: configure,
    subscribe: subscribe,
    update: update,
    unsubscribe: unsubscribe,
    status: status,
    supported: supported,
    // shared with the service worker
    _internal: { loadState: loadState, saveState: saveState, serverKey: serverKey,
      pushOptions: pushOptions, renew: renew, api: api },
  };
})(self);
