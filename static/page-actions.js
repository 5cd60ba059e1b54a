// Buttons a page offers once script runs (hidden without it): data-print prints the page (or
// saves it as PDF, as the browser's print dialog offers); data-copy="#id" copies that field's
// value and says so in the button; a select's data-shows=".class" shows only the elements of
// that class whose data-for is the selected value. No inline script: the portal's CSP allows
// only its own files.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-shows]").forEach(function (select) {
    var show = function () {
      document.querySelectorAll(select.getAttribute("data-shows")).forEach(function (el) {
        el.hidden = el.getAttribute("data-for") !== select.value;
      });
    };
    select.addEventListener("change", show);
    show();
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      window.print();
    });
  });
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      field.select();
      var done = function () {
        button.textContent = button.getAttribute("data-copied") || button.textContent;
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          document.execCommand("copy");
          done();
        });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });
});
