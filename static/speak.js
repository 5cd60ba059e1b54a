// "朗读" (read aloud, issue 35): a button `[data-speak="<css>"]` reads the text of that part of
// the page (an access code marked `data-no-speak` left out) through the browser's own speech synthesis, in the page's language. It stays hidden
// where the browser has no voice for that language (or no speech synthesis at all); pressed
// again while reading, it stops.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button[data-speak]");
  if (!buttons.length || !("speechSynthesis" in window) || !("SpeechSynthesisUtterance" in window)) { return; }
  var synth = window.speechSynthesis;
  var lang = (document.documentElement.lang || "zh-CN").toLowerCase();
  var prefix = lang.split("-")[0];
  function voice() {
    var voices = synth.getVoices().filter(function (v) { return (v.lang || "").toLowerCase().replace("_", "-").indexOf(prefix) === 0; });
    var exact = voices.filter(function (v) { return v.lang.toLowerCase().replace("_", "-") === lang; });
    return exact[0] || voices[0] || null;
  }
  function show() {
    var found = voice() !== null;
    Array.prototype.forEach.call(buttons, function (b) { b.hidden = !found; });
  }
  function label(b, speaking) {
    if (!b.getAttribute("data-read")) { b.setAttribute("data-read", b.textContent); }
    b.textContent = speaking ? b.getAttribute("data-stop") : b.getAttribute("data-read");
    b.setAttribute("aria-pressed", speaking ? "true" : "false");
  }
  Array.prototype.forEach.call(buttons, function (b) {
    b.addEventListener("click", function () {
      if (synth.speaking) { synth.cancel(); label(b, false); return; }
      var part = document.querySelector(b.getAttribute("data-speak"));
      var v = voice();
      if (!part || !v) { return; }
      // Sentence by sentence: long utterances are cut short by some engines.
      // Never aloud: the button itself, and what is marked so (an access code, in an office).
      var text = part.innerText;
      Array.prototype.forEach.call(part.querySelectorAll("[data-no-speak], button"), function (e) {
        if (e.innerText) { text = text.split(e.innerText).join(" "); }
      });
      var sentences = text.split(/(?<=[。！？；.!?;])\s*|\n+/).filter(function (s) { return s.trim(); });
      sentences.forEach(function (s, i) {
        var u = new window.SpeechSynthesisUtterance(s);
        u.lang = v.lang;
        u.voice = v;
        u.rate = 0.9;
        if (i === sentences.length - 1) { u.onend = function () { label(b, false); }; }
        synth.speak(u);
      });
      label(b, true);
    });
  });
  if ("onvoiceschanged" in synth) { synth.addEventListener("voiceschanged", show); }
  show();
})();
