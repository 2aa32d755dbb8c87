// The fleet page's script (served as /fleet.js; the page's policy allows no other script).
// Every two seconds it reads the page again and puts its fresh content in place, so the view
// follows the rollout without a reload; every second it moves the elapsed times and
// deadlines on, on the agent's clock. It only moves markup the agent rendered and escaped:
// nothing from the fetched page runs (a parsed document is inert).
(function () {
  "use strict";
  var offset = 0; // the agent's clock minus this browser's, in seconds
  var failures = 0;

  function sync(doc) {
    var now = Number(doc.body.getAttribute("data-now"));
    if (now > 0) {
      offset = now - Date.now() / 1000;
    }
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // As the agent writes spans: 45s, 2m05s, 1h02m, 3d04h.
  function span(secs) {
    var s = Math.max(0, Math.floor(secs));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + pad(Math.floor(s / 60) % 60) + "m";
    return Math.floor(s / 86400) + "d" + pad(Math.floor(s / 3600) % 24) + "h";
  }

  function tick() {
    var now = Date.now() / 1000 + offset;
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = span(now - Number(el.getAttribute("data-since")));
    });
    document.querySelectorAll("[data-until]").forEach(function (el) {
      el.textContent = span(Number(el.getAttribute("data-until")) - now);
    });
  }

  function refresh() {
    fetch(window.location.pathname, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("fleet");
        var old = document.getElementById("fleet");
        if (!fresh || !old) throw new Error("not a fleet page");
        sync(doc);
        old.replaceWith(document.adoptNode(fresh));
        var updates = Number(document.body.getAttribute("data-updates") || "0") + 1;
        document.body.setAttribute("data-updates", String(updates));
        document.body.classList.remove("stale");
        failures = 0;
        tick();
      })
      .catch(function () {
        failures += 1;
        if (failures >= 2) document.body.classList.add("stale");
      });
  }

  sync(document);
  tick();
  window.setInterval(tick, 1000);
  window.setInterval(refresh, 2000);
})();
