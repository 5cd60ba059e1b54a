// Keyboard (issue 35): the keys the page tells of (`#viewer-keys`), unless the focus is in a
// field or a modifier is held (Ctrl with + and - stays the browser's own zoom). `handle(key)`
// returns whether it used the key.
function keys(handle) {
  "use strict";
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return; }
    if (handle(e.key)) { e.preventDefault(); }
  });
}

// Image viewer: zoom with the buttons, ctrl+wheel (a trackpad's pinch) or two fingers, pan by
// dragging with a mouse or one finger once zoomed. At 100 % a finger scrolls the page, and a
// plain wheel scrolls it too: the image never traps the page. Without JavaScript the image is
// simply shown at the width of the page.
(function () {
  "use strict";
  var stage = document.getElementById("image-stage");
  if (!stage) { return; }
  keys(function (key) {
    var step = 40 / scale;
    if (key === "+" || key === "=") { setScale(scale * 1.25); }
    else if (key === "-" || key === "_") { setScale(scale * 0.8); }
    else if (key === "0") { x = 0; y = 0; setScale(1); }
    else if (scale > 1 && key === "ArrowLeft") { x += step * scale; apply(); }
    else if (scale > 1 && key === "ArrowRight") { x -= step * scale; apply(); }
    else if (scale > 1 && key === "ArrowUp") { y += step * scale; apply(); }
    else if (scale > 1 && key === "ArrowDown") { y -= step * scale; apply(); }
    else { return false; }
    return true;
  });
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
  document.getElementById("viewer-keys").hidden = false;
  apply();
})();

// PDF pages (rendered, one picture a page): the previous and next page by button or by
// PageUp / PageDown / ← / →, zoom by button or + / - / 0. The page being read is the one at the
// top of the screen; moving to a page focuses it (for a screen reader, its text alternative).
(function () {
  "use strict";
  var stage = document.getElementById("pages-stage");
  if (!stage) { return; }
  var list = document.getElementById("pdf-pages");
  var pages = list.querySelectorAll("li");
  var status = document.getElementById("page-status");
  var template = stage.getAttribute("data-page-of");
  var current = 0, scale = 1;
  function show() {
    status.textContent = template.replace("%{n}", String(current + 1)).replace("%{m}", String(pages.length));
  }
  function go(n) {
    moved = Date.now();
    current = Math.min(pages.length - 1, Math.max(0, n));
    pages[current].focus({ preventScroll: true });
    pages[current].scrollIntoView({ block: "start" });
    show();
  }
  function zoom(s) {
    scale = Math.min(4, Math.max(1, s));
    list.style.width = Math.round(scale * 100) + "%";
    document.getElementById("zoom-level").textContent = Math.round(scale * 100) + "%";
  }
  document.getElementById("page-prev").addEventListener("click", function () { go(current - 1); });
  document.getElementById("page-next").addEventListener("click", function () { go(current + 1); });
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(scale * 1.25); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(scale * 0.8); });
  document.getElementById("zoom-reset").addEventListener("click", function () { zoom(1); });
  keys(function (key) {
    if (key === "PageDown" || key === "ArrowRight") { go(current + 1); }
    else if (key === "PageUp" || key === "ArrowLeft") { go(current - 1); }
    else if (key === "+" || key === "=") { zoom(scale * 1.25); }
    else if (key === "-" || key === "_") { zoom(scale * 0.8); }
    else if (key === "0") { zoom(1); }
    else { return false; }
    return true;
  });
  // Scrolled by other means, the page being read is the last one whose top has passed the top
  // third of the screen (not right after a move by key or button, which decides itself).
  var moved = 0, pending = false;
  window.addEventListener("scroll", function () {
    if (pending || Date.now() - moved < 600) { return; }
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      var n = 0;
      for (var i = 0; i < pages.length; i++) {
        if (pages[i].getBoundingClientRect().top <= window.innerHeight / 3) { n = i; }
      }
      current = n;
      show();
    });
  }, { passive: true });
  document.getElementById("zoom-controls").hidden = false;
  document.getElementById("viewer-keys").hidden = false;
  show();
})();
