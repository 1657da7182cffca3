// Adds the reader's local time beside every UTC time. Without this script
// the page still shows every time in UTC.
(function () {
  "use strict";
  var tz;
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!tz || tz === "UTC" || tz === "Etc/UTC") return;
  var full = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  var els = document.querySelectorAll("time[data-local]");
  for (var i = 0; i < els.length; i++) {
    var d = new Date(els[i].getAttribute("datetime"));
    if (isNaN(d)) continue;
    var s = document.createElement("span");
    s.className = "local";
    s.textContent = " (" + full.format(d) + " your time)";
    els[i].after(s);
  }
})();
