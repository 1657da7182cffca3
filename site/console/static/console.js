// Shows the reader's local time beside every UTC time. Progressive
// enhancement: without JavaScript the UTC times stand alone.
document.addEventListener("DOMContentLoaded", function () {
  var fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  document.querySelectorAll("time.local[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) { return; }
    var span = document.createElement("span");
    span.className = "localtime";
    span.textContent = " (" + fmt.format(d) + ")";
    el.after(span);
  });
});
