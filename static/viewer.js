// Image viewer: zoom with the buttons, ctrl+wheel (a trackpad's pinch) or two fingers, pan by
// dragging with a mouse or one finger once zoomed. At 100 % a finger scrolls the page, and a
// plain wheel scrolls it too: the image never traps the page. Without JavaScript the image is
// simply shown at the width of the page.
(function () {
  "use strict";
  var stage = document.getElementById("image-stage");
  if (!stage) { return; }
  var img = stage.querySelector("img");
  var scale = 1, x = 0, y = 0;
  var pointers = {};
  var gesture = null;
  function apply() {
    img.style.transform = "translate(" + x + "px," + y + "px) scale(" + scale + ")";
    document.getElementById("zoom-level").textContent = Math.round(scale * 100) + "%";
    // Zoomed, fingers move the image; at 100 % they scroll the page.
    stage.style.touchAction = scale > 1 ? "none" : "pan-x pan-y";
  }
  function setScale(s) {
    scale = Math.min(8, Math.max(0.25, s));
    if (scale <= 1) { x = 0; y = 0; }
    apply();
  }
  document.getElementById("zoom-in").addEventListener("click", function () { setScale(scale * 1.25); });
  document.getElementById("zoom-out").addEventListener("click", function () { setScale(scale * 0.8); });
  document.getElementById("zoom-reset").addEventListener("click", function () { x = 0; y = 0; setScale(1); });
  stage.addEventListener("wheel", function (e) {
    if (!e.ctrlKey) { return; }
    e.preventDefault();
    setScale(scale * (e.deltaY < 0 ? 1.1 : 0.9));
  }, { passive: false });

  function points() {
    return Object.keys(pointers).map(function (k) { return pointers[k]; });
  }
  function begin() {
    var p = points();
    if (p.length === 2) {
      gesture = {
        distance: Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y) || 1,
        mx: (p[0].x + p[1].x) / 2, my: (p[0].y + p[1].y) / 2,
        scale: scale, x: x, y: y
      };
    } else if (p.length === 1 && (scale > 1 || p[0].type === "mouse")) {
      gesture = { px: p[0].x, py: p[0].y, x: x, y: y };
    } else {
      gesture = null;
    }
  }
  stage.addEventListener("pointerdown", function (e) {
    pointers[e.pointerId] = { x: e.clientX, y: e.clientY, type: e.pointerType };
    if (scale > 1 || e.pointerType === "mouse" || Object.keys(pointers).length > 1) {
      stage.setPointerCapture(e.pointerId);
    }
    begin();
  });
  stage.addEventListener("pointermove", function (e) {
    if (!pointers[e.pointerId]) { return; }
    pointers[e.pointerId].x = e.clientX;
    pointers[e.pointerId].y = e.clientY;
    if (!gesture) { return; }
    var p = points();
    if (p.length === 2 && gesture.distance) {
      var d = Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y);
      x = gesture.x + (p[0].x + p[1].x) / 2 - gesture.mx;
      y = gesture.y + (p[0].y + p[1].y) / 2 - gesture.my;
      setScale(gesture.scale * d / gesture.distance);
    } else if (p.length === 1 && gesture.px !== undefined) {
      x = gesture.x + p[0].x - gesture.px;
      y = gesture.y + p[0].y - gesture.py;
      apply();
    }
  });
  function end(e) { delete pointers[e.pointerId]; begin(); }
  stage.addEventListener("pointerup", end);
  stage.addEventListener("pointercancel", end);
  document.getElementById("zoom-controls").hidden = false;
  apply();
})();
