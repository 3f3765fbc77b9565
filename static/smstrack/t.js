/*! flask-smstrack snippet: keeps ?smsclid= in a first-party cookie; POSTs
 * text/plain JSON to ./collect: {type: landing|conversion, click_id, event, revenue,
 * currency, order_id}. Use: smstrack('conversion', {...}), smstrack('consent', bool) */
(function (w, d) {
  var stub = w.smstrack, el, api, name, age, ok, id, fresh, q, i;

  function cfg(key, dflt) {
    return el.getAttribute('data-' + key) || dflt;
  }
  function store(value, maxAge) {
    d.cookie = name + '=' + value + ';path=/;max-age=' + maxAge + ';SameSite=Lax' +
      (location.protocol == 'https:' ? ';Secure' : '') + (cfg('cookie-domain') ? ';domain=' + cfg('cookie-domain') : '');
  }
  function send(body) {
    body = JSON.stringify(body, function (k, v) {
      return v == null ? undefined : v;
    });
    try {
      (navigator.sendBeacon && navigator.sendBeacon(api, body)) ||
        fetch(api, { method: 'POST', body: body, keepalive: true, mode: 'no-cors',
          credentials: 'include', headers: { 'Content-Type': 'text/plain' } }).catch(function () {});
    } catch (e) {}
  }

  function smstrack(cmd, arg) {
    try {
      if (cmd == 'consent' && typeof arg == 'boolean') {
        ok = arg;
        ok ? fresh && store(fresh, age) : store('', 0);
      } else if (cmd == 'conversion') {
        if (arg === undefined) arg = {};
        if (arg && typeof arg == 'object') send({ type: cmd, click_id: id || null, event: arg.event,
          revenue: arg.revenue, currency: arg.currency, order_id: arg.order_id });
      }
    } catch (e) {}
  }

  try {
    el = d.currentScript || [].slice.call(d.querySelectorAll('script[src*="/t.js"]')).pop();
    api = cfg('api', el.src.split(/[?#]/)[0].replace(/[^\/]*$/, 'collect'));
    name = cfg('cookie', '_smsclid');
    age = (parseFloat(cfg('cookie-days')) || 30) * 86400;
    ok = cfg('consent') != 'required';
    try {
      id = new URLSearchParams(location.search).get(cfg('param', 'smsclid')) || '';
      if (/^[\w-]{1,64}$/.test(id)) {
        fresh = id;
        if (ok) store(id, age);
        send({ type: 'landing', click_id: id });
      } else { // throws when there is no cookie
        id = ('; ' + d.cookie).split('; ' + name + '=')[1].split(';')[0];
      }
    } catch (e) {}
    for (q = (stub && stub.q) || [], i = 0; i < q.length; i++) {
      try { smstrack.apply(w, q[i]); } catch (e) {}
    }
    w.smstrack = smstrack;
  } catch (e) {}
})(window, document);
