// Image viewer: zoom with the buttons or the wheel, pan by dragging. Without JavaScript the
// image is simply shown at the width of the page.
(function () {
  "use strict";
  var stage = document.getElementById("image-stage");
  if (!stage) { return; }
  var img = stage.querySelector("img");
  var scale = 1, x = 0, y = 0, dragging = null;
  function apply() {
    img.style.transform = "translate(" + x + "px," + y + "px) scale(" + scale + ")";
    document.getElementById("zoom-level").textContent = Math.round(scale * 100) + "%";
  }
  function zoom(factor) {
    scale = Math.min(8, Math.max(0.25, scale * factor));
    apply();
  }
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(1.25); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(0.8); });
  document.getElementById("zoom-reset").addEventListener("click", function () { scale = 1; x = 0; y = 0; apply(); });
  stage.addEventListener("wheel", function (e) { e.preventDefault(); zoom(e.deltaY < 0 ? 1.1 : 0.9); }, { passive: false });
  stage.addEventListener("pointerdown", function (e) {
    dragging = { px: e.clientX, py: e.clientY, x: x, y: y };
    stage.setPointerCapture(e.pointerId);
  });
  stage.addEventListener("pointermove", function (e) {
    if (!dragging) { return; }
    x = dragging.x + e.clientX - dragging.px;
    y = dragging.y + e.clientY - dragging.py;
    apply();
  });
  stage.addEventListener("pointerup", function () { dragging = null; });
  document.getElementById("zoom-controls").hidden = false;
  apply();
})();
