// The redaction editor: drag on the picture (mouse, pen or finger) to draw a box, which fills
// the next empty row of the table; the rows are the truth, and typing numbers there (the
// keyboard's way) moves the drawn boxes. Zoom with the buttons; "preview" shows the boxes solid
// black, as they will be burned in. Without JavaScript the table alone does the work.
(function () {
  "use strict";
  var stage = document.getElementById("redact-stage");
  var layer = document.getElementById("redact-layer");
  var form = document.getElementById("redact-form");
  if (!stage || !layer || !form) { return; }
  var shape = stage.getAttribute("data-shape");
  var picture = stage.querySelector("img, video");
  var pageSelect = document.getElementById("redact-page");
  var preview = document.getElementById("redact-preview");
  var zoom = 1;

  function page() { return pageSelect ? pageSelect.value : ""; }
  function field(row, name) { return form.querySelector("[name='box" + row + "." + name + "']"); }
  function rows() { return Array.prototype.slice.call(form.querySelectorAll("tr[data-row]")); }
  function num(row, name) {
    var f = field(row, name);
    var v = f ? parseFloat(f.value) : NaN;
    return isFinite(v) ? v : NaN;
  }
  function round(v) { return Math.round(v * 100) / 100; }

  function draw() {
    layer.innerHTML = "";
    rows().forEach(function (tr) {
      var i = tr.getAttribute("data-row");
      var x = num(i, "x"), y = num(i, "y"), w = num(i, "w"), h = num(i, "h");
      if (!(w > 0 && h > 0) || isNaN(x) || isNaN(y)) { return; }
      if (pageSelect && field(i, "page") && field(i, "page").value.trim() !== page()) { return; }
      var box = document.createElement("div");
      box.className = "redact-box" + (preview && preview.checked ? " solid" : "");
      box.style.left = x + "%"; box.style.top = y + "%";
      box.style.width = w + "%"; box.style.height = h + "%";
      box.textContent = preview && preview.checked ? "" : String(Number(i) + 1);
      layer.appendChild(box);
    });
  }

  function emptyRow() {
    var found = null;
    rows().some(function (tr) {
      var i = tr.getAttribute("data-row");
      if (["x", "y", "w", "h"].every(function (n) { return field(i, n).value.trim() === ""; })) {
        found = i; return true;
      }
      return false;
    });
    return found;
  }

  function point(e) {
    var r = layer.getBoundingClientRect();
    return {
      x: Math.min(100, Math.max(0, (e.clientX - r.left) / r.width * 100)),
      y: Math.min(100, Math.max(0, (e.clientY - r.top) / r.height * 100))
    };
  }

  var start = null, ghost = null;
  layer.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) { return; }
    start = point(e);
    try { layer.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic pointer */ }
    ghost = document.createElement("div");
    ghost.className = "redact-box drawing";
    layer.appendChild(ghost);
    e.preventDefault();
  });
  layer.addEventListener("pointermove", function (e) {
    if (!start) { return; }
    var p = point(e);
    ghost.style.left = Math.min(start.x, p.x) + "%";
    ghost.style.top = Math.min(start.y, p.y) + "%";
    ghost.style.width = Math.abs(p.x - start.x) + "%";
    ghost.style.height = Math.abs(p.y - start.y) + "%";
  });
  layer.addEventListener("pointerup", function (e) {
    if (!start) { return; }
    var p = point(e), s = start;
    start = null;
    var w = Math.abs(p.x - s.x), h = Math.abs(p.y - s.y);
    if (w < 0.5 || h < 0.5) { draw(); return; }
    var i = emptyRow();
    if (i === null) { draw(); return; }
    field(i, "x").value = round(Math.min(s.x, p.x));
    field(i, "y").value = round(Math.min(s.y, p.y));
    field(i, "w").value = round(w);
    field(i, "h").value = round(h);
    if (field(i, "page")) { field(i, "page").value = page(); }
    if (shape === "video" && picture) {
      var t = round(picture.currentTime || 0);
      field(i, "start").value = t;
      var d = picture.duration;
      field(i, "end").value = isFinite(d) ? round(d) : round(t + 5);
    }
    draw();
    field(i, "reason").focus();
  });
  layer.addEventListener("pointercancel", function () { start = null; draw(); });

  form.addEventListener("input", draw);
  form.addEventListener("change", draw);
  form.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest(".redact-clear") : null;
    if (!button) { return; }
    var tr = button.closest("tr");
    tr.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    tr.querySelectorAll("select").forEach(function (select) { select.value = ""; });
    draw();
  });
  if (preview) { preview.addEventListener("change", draw); }
  if (pageSelect) {
    pageSelect.addEventListener("change", function () {
      picture.src = picture.getAttribute("data-src") + pageSelect.value;
      draw();
    });
  }
  function setZoom(z) {
    zoom = Math.min(4, Math.max(1, z));
    stage.style.width = (zoom * 100) + "%";
  }
  document.getElementById("redact-zoom-in").addEventListener("click", function () { setZoom(zoom * 1.5); });
  document.getElementById("redact-zoom-out").addEventListener("click", function () { setZoom(zoom / 1.5); });
  draw();
})();
