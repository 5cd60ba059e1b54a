// Upload page: every chosen or dropped file gets its own row (kind, title, progress bar) and its
// own request, so one failure does not stop the others. No inline script: data comes from
// data- attributes, and the CSP allows only scripts from this origin.
(function () {
  "use strict";
  var root = document.getElementById("uploader");
  if (!root) { return; }
  var url = root.getAttribute("data-url");
  var csrf = root.getAttribute("data-csrf");
  var list = document.getElementById("upload-list");
  var picker = document.getElementById("upload-picker");
  var drop = document.getElementById("drop-zone");
  var start = document.getElementById("upload-start");
  var template = document.getElementById("upload-row");
  var pending = [];
  var sending = 0;
  // Status texts in the page's language (from the message catalog, via data- attributes).
  function text(name) { return root.getAttribute("data-text-" + name) || ""; }

  function guessKind(name) {
    var n = name.toLowerCase();
    if (/\.(mp4|mov|webm|avi)$/.test(n)) { return "video"; }
    if (/\.(jpe?g|png|webp|gif|tiff?)$/.test(n)) { return "scene_photo"; }
    return "other";
  }

  function sizeText(bytes) {
    if (bytes >= 1073741824) { return (bytes / 1073741824).toFixed(1) + " GB"; }
    if (bytes >= 1048576) { return (bytes / 1048576).toFixed(1) + " MB"; }
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  function add(files) {
    for (var i = 0; i < files.length; i++) {
      var file = files[i];
      var row = template.content.firstElementChild.cloneNode(true);
      var id = "f" + (pending.length + 1);
      row.querySelector(".file-name").textContent = file.name + " (" + sizeText(file.size) + ")";
      var kind = row.querySelector("select");
      kind.id = id + "-kind";
      row.querySelector(".kind-label").setAttribute("for", kind.id);
      kind.value = guessKind(file.name);
      var title = row.querySelector("input");
      title.id = id + "-title";
      row.querySelector(".title-label").setAttribute("for", title.id);
      title.value = file.name.replace(/\.[^.]+$/, "");
      var item = { file: file, row: row };
      row.querySelector(".retry").addEventListener("click", retryOf(item));
      row.querySelector(".remove").addEventListener("click", removeOf(item));
      list.appendChild(row);
      pending.push(item);
    }
    start.disabled = pending.length === 0;
  }

  // A failed file can be sent again, or taken off the list.
  function retryOf(item) {
    return function () {
      item.row.classList.remove("failed");
      item.row.querySelector("progress").value = 0;
      sending += 1;
      send(item).then(function () { sending -= 1; summarise(); });
    };
  }
  function removeOf(item) {
    return function () {
      item.row.parentNode.removeChild(item.row);
      pending = pending.filter(function (p) { return p !== item; });
      start.disabled = pending.length === 0;
      summarise();
    };
  }

  // "3 个文件：2 个成功，1 个失败": what the batch came to, announced.
  function summarise() {
    var rows = list.querySelectorAll(".upload-row");
    var ok = list.querySelectorAll(".upload-row.done").length;
    var failed = list.querySelectorAll(".upload-row.failed").length;
    if (ok + failed === 0) { return; }
    var summary = document.getElementById("upload-summary");
    summary.textContent = text("summary")
      .replace("%{n}", String(rows.length))
      .replace("%{ok}", String(ok))
      .replace("%{failed}", String(failed));
    summary.hidden = false;
    summary.className = failed > 0 ? "alert" : "notice";
    document.getElementById("upload-done").hidden = failed > 0 || sending > 0;
  }

  function send(item) {
    return new Promise(function (resolve) {
      var row = item.row;
      var bar = row.querySelector("progress");
      var status = row.querySelector(".status");
      var form = new FormData();
      form.append("kind", row.querySelector("select").value);
      form.append("title", row.querySelector("input").value);
      form.append("file", item.file, item.file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
      };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
        if (xhr.status === 201) {
          bar.value = bar.max;
          status.textContent = body.duplicate_of ? text("duplicate") : text("uploaded");
          row.classList.remove("failed");
          row.classList.add("done");
        } else {
          status.textContent = text("failed") + ((body.error && body.error.message) || ("HTTP " + xhr.status));
          row.classList.add("failed");
        }
        resolve();
      };
      xhr.onerror = function () {
        status.textContent = text("failed") + text("network");
        row.classList.add("failed");
        resolve();
      };
      status.textContent = text("uploading");
      xhr.send(form);
    });
  }

  picker.addEventListener("change", function () { add(picker.files); picker.value = ""; });
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    drop.classList.remove("over");
    add(e.dataTransfer.files);
  });
  // Leaving while files are still going up loses them: the browser asks first.
  window.addEventListener("beforeunload", function (e) {
    if (sending > 0) { e.preventDefault(); e.returnValue = ""; }
  });
  start.addEventListener("click", function () {
    var batch = pending;
    pending = [];
    start.disabled = true;
    sending += batch.length;
    // Two at a time: steady progress without flooding a slow link.
    var next = 0;
    function worker() {
      if (next >= batch.length) { return Promise.resolve(); }
      var item = batch[next++];
      return send(item).then(function () { sending -= 1; }).then(worker);
    }
    Promise.all([worker(), worker()]).then(summarise);
  });
})();
