/*! flask-smstrack landing-page snippet (GET /smstrack/t.js). Keeps the SMS click
 * id (?smsclid=) in a first-party cookie and POSTs JSON as text/plain (no CORS
 * preflight) to <script dir>/collect: {"type":"landing","click_id":ID} or
 * {"type":"conversion","click_id":ID,"event","revenue","currency","order_id"}.
 * API: smstrack('conversion', {...}), smstrack('consent', true|false).
 * data-*: api param cookie cookie-domain cookie-days consent="required" */
(function (w, d, loc) {
  var stub = w.smstrack, el, api, cookie, days, allowed, clickId, fromUrl, q, i;

  function cfg(name, dflt) {
    return (el && el.getAttribute('data-' + name)) || dflt;
  }
  function setCookie(value, age) {
    d.cookie = cookie + '=' + encodeURIComponent(value) + ';path=/;max-age=' + age + ';SameSite=Lax' +
      (loc.protocol == 'https:' ? ';Secure' : '') + (cfg('cookie-domain') ? ';domain=' + cfg('cookie-domain') : '');
  }
  function readCookie() {
    var v = ('; ' + d.cookie).split('; ' + cookie + '=')[1];
    return v ? decodeURIComponent(v.split(';')[0]) : null;
  }
  function send(body) {
    body = JSON.stringify(body);
    try {
      if (navigator.sendBeacon(api, body)) return;
    } catch (e) {}
    try {
      fetch(api, { method: 'POST', body: body, keepalive: true, mode: 'no-cors',
        credentials: 'include', headers: { 'Content-Type': 'text/plain' } }).catch(function () {});
    } catch (e) {}
  }

  function smstrack(command, arg) {
    try {
      if (command == 'consent') {
        allowed = arg === true;
        if (!allowed) setCookie('', 0); // withdrawn: forget the stored click
        else if (fromUrl) setCookie(clickId, days);
        else clickId = clickId || readCookie();
      } else if (command == 'conversion') {
        if (arg === undefined) arg = {};
        if (!arg || typeof arg != 'object') return;
        var body = { type: command, click_id: clickId || undefined }; // undefined: left out
        ['event', 'revenue', 'currency', 'order_id'].forEach(function (key) {
          if (arg[key] != null) body[key] = arg[key];
        });
        send(body);
      }
    } catch (e) {}
  }

  try {
    el = d.currentScript || [].slice.call(d.querySelectorAll('script[src*="/t.js"]')).pop();
    api = cfg('api', el ? el.src.split(/[?#]/)[0].replace(/[^\/]*$/, 'collect') : '/smstrack/collect');
    cookie = cfg('cookie', '_smsclid');
    days = (parseFloat(cfg('cookie-days')) || 30) * 86400; // as max-age
    allowed = cfg('consent') != 'required'; // cookie allowed before smstrack('consent', true)?
    try {
      clickId = new URLSearchParams(loc.search).get(cfg('param', 'smsclid'));
      if (clickId) { // a new click: last click wins
        fromUrl = true;
        if (allowed) setCookie(clickId, days);
        send({ type: 'landing', click_id: clickId });
      } else if (allowed) {
        clickId = readCookie();
      }
    } catch (e) {}
    // replay calls queued by the stub, then take its place
    for (q = (stub && stub.q) || [], i = 0; i < q.length; i++) {
      try { smstrack.apply(w, q[i]); } catch (e) {}
    }
    w.smstrack = smstrack;
  } catch (e) {}
})(window, document, location);
