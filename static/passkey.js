// Passkeys (WebAuthn) for the second factor: registering one on the account's second-factor
// page, signing in with one on the challenge page. The server sends the options and checks the
// answer; this only carries them between it and the browser's authenticator.
(function () {
  'use strict';
  function bytes(text) {
    var s = text.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); });
  }
  function text(buffer) {
    var b = new Uint8Array(buffer), s = '';
    for (var i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  async function post(url, csrf, body) {
    var r = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {})
    });
    var data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    if (!r.ok) { throw new Error((data.error && data.error.message) || String(r.status)); }
    return data;
  }
  function say(el, message) {
    var status = document.getElementById(el.dataset.status);
    status.textContent = message;
    status.hidden = false;
  }

  var add = document.getElementById('add-passkey');
  if (add) {
    add.addEventListener('click', async function () {
      add.disabled = true;
      try {
        var options = (await post(add.dataset.begin, add.dataset.csrf)).publicKey;
        options.challenge = bytes(options.challenge);
        options.user.id = bytes(options.user.id);
        (options.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
        var made = await navigator.credentials.create({ publicKey: options });
        var done = await post(add.dataset.finish, add.dataset.csrf, {
          name: document.getElementById('passkey-name').value,
          credential: {
            id: made.id,
            rawId: text(made.rawId),
            type: made.type,
            extensions: {},
            response: {
              attestationObject: text(made.response.attestationObject),
              clientDataJSON: text(made.response.clientDataJSON)
            }
          }
        });
        if (done.recovery_codes && done.recovery_codes.length) {
          var list = document.getElementById('passkey-recovery-list');
          done.recovery_codes.forEach(function (code) {
            var li = document.createElement('li');
            var c = document.createElement('code');
            c.className = 'secret';
            c.textContent = code;
            li.appendChild(c);
            list.appendChild(li);
          });
          document.getElementById('passkey-recovery').hidden = false;
        } else {
          window.location.reload();
        }
      } catch (e) {
        say(add, add.dataset.failed + ' ' + e.message);
      } finally {
        add.disabled = false;
      }
    });
  }

  var use = document.getElementById('use-passkey');
  if (use) {
    use.addEventListener('click', async function () {
      use.disabled = true;
      try {
        var options = (await post(use.dataset.begin, use.dataset.csrf)).publicKey;
        options.challenge = bytes(options.challenge);
        (options.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
        var got = await navigator.credentials.get({ publicKey: options });
        var done = await post(use.dataset.finish, use.dataset.csrf, {
          next: use.dataset.next,
          credential: {
            id: got.id,
            rawId: text(got.rawId),
            type: got.type,
            extensions: {},
            response: {
              authenticatorData: text(got.response.authenticatorData),
              clientDataJSON: text(got.response.clientDataJSON),
              signature: text(got.response.signature),
              userHandle: got.response.userHandle ? text(got.response.userHandle) : null
            }
          }
        });
        window.location.assign(done.redirect);
      } catch (e) {
        say(use, use.dataset.failed + ' ' + e.message);
        use.disabled = false;
      }
    });
  }
})();
