// retsync web console: follows the outbox state of a return's decisions until none is pending or sending.
(function () {
  "use strict";
  var table = document.querySelector("[data-poll]");
  if (!table) { return; }
  var url = table.getAttribute("data-poll");
  var delay = 1500;

  function open() {
    return document.querySelectorAll("[data-decision][data-open=yes]").length > 0;
  }

  function poll() {
    if (!open()) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        body.decisions.forEach(function (d) {
          var cell = document.querySelector('[data-decision="' + d.id + '"]');
          if (!cell) { return; }
          cell.textContent = d.label;
          cell.className = "state " + d.state;
          cell.setAttribute("data-open", d.open ? "yes" : "no");
        });
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { window.setTimeout(poll, delay); });
  }

  window.setTimeout(poll, delay);
}());
