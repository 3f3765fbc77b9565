/*! flask-smstrack */
/*
 * The landing-page snippet. It keeps the click id that a tracked SMS link
 * adds to the page URL (?smsclid=...) in a first-party cookie, tells the
 * tracker that the page really loaded (a "landing" ping) and reports
 * conversions:
 *
 *   smstrack('conversion', {event: 'purchase', revenue: '49.90', currency: 'USD', order_id: 'A-1001'});
 *
 * With a conversion token from the shop's server (smstrack.conversion_token()
 * or POST /smstrack/api/v1/conversion-tokens) in `token`, the conversion
 * counts as verified.
 *
 * Options are data-* attributes on its script tag:
 *   data-api             the collector's URL (default: "collect" next to this script)
 *   data-param           the URL parameter with the click id (default: smsclid)
 *   data-cookie          the cookie's name (default: _smsclid)
 *   data-cookie-domain   the cookie's domain (default: the page's host)
 *   data-cookie-days     the cookie's lifetime in days (default: 30)
 *   data-consent         "required": nothing stored or sent before smstrack('consent', true)
 *   data-respect-dnt     (no value) Do Not Track counts like Global Privacy Control
 *   data-keep-param      (no value) leave the click id in the address bar
 *
 * Privacy:
 * - Global Privacy Control (navigator.globalPrivacyControl), or Do Not Track
 *   with data-respect-dnt: the snippet stores nothing and sends nothing, and
 *   removes its cookie if an earlier visit left one. smstrack(...) calls are
 *   accepted and dropped; smstrack('consent', true) does not override the
 *   browser's signal.
 * - data-consent="required": nothing is stored or sent until the page calls
 *   smstrack('consent', true); then the cookie is written and the landing ping
 *   and the conversions made so far (held in memory, never stored) go out.
 * - smstrack('consent', false), in any mode, removes the cookie, forgets the
 *   waiting conversions and stops sending until smstrack('consent', true).
 * - The click id is taken out of the address bar (history.replaceState; the
 *   path, the other parameters and the hash stay as they are), so that it is
 *   not copied, shared or bookmarked.
 *
 * Messages are JSON sent as text/plain (no CORS preflight), with sendBeacon
 * or else fetch with keepalive. Errors are swallowed: the snippet never
 * breaks the host page.
 *
 * This file is written to be read: the server minifies it when it serves it
 * (flask_smstrack/web/snippet.py), and a test keeps the result under budget.
 */
(function () {
  var script, endpoint, cookieName, cookieSeconds;
  var landingId;     // the click id in this page's URL, if any
  var clickId;       // the click id that conversions are attributed to
  var allowed;       // may it store and send: true, false, or null while waiting for consent
  var refused;       // the browser asks not to be tracked (GPC, or DNT with data-respect-dnt)
  var waiting = [];  // what waits for consent (the landing ping, conversions), in memory only

  // The value of data-<name> on the script tag: null when it is missing, "" when it has no value.
  function option(name) {
    return script.getAttribute('data-' + name);
  }

  function isClickId(value) {
    return value && /^[\w-]{1,64}$/.test(value);
  }

  // An empty value and a lifetime of 0 remove the cookie.
  function writeCookie(value, seconds) {
    var domain = option('cookie-domain');
    document.cookie = cookieName + '=' + value + ';path=/;max-age=' + seconds + ';SameSite=Lax' +
      (location.protocol == 'https:' ? ';Secure' : '') + (domain ? ';domain=' + domain : '');
  }

  function send(message) {
    var body = JSON.stringify(message);
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
      fetch(endpoint, {method: 'POST', body: body, keepalive: true, mode: 'no-cors', credentials: 'include'})
        .catch(function () {});
    }
  }

  function consent(given) {
    allowed = given && !refused;
    var waited = waiting.splice(0);  // goes out now, or is forgotten
    if (!allowed) {
      writeCookie('', 0);
    } else {
      if (landingId) writeCookie(landingId, cookieSeconds);
      waited.forEach(send);
    }
  }

  // The global: smstrack('conversion', {...}) or smstrack('consent', true or false).
  function smstrack(command, details) {
    try {
      if (details === undefined) details = {};
      if (command == 'consent' && typeof details == 'boolean') {
        consent(details);
      } else if (command == 'conversion' && details && typeof details == 'object') {
        // JSON.stringify leaves out the fields that are undefined; null ones are left out here.
        var message = {type: command, click_id: clickId};
        ['event', 'revenue', 'currency', 'order_id', 'token'].forEach(function (field) {
          if (details[field] != null) message[field] = details[field];
        });
        if (allowed) send(message);
        else if (allowed == null) waiting.push(message);
      }
    } catch (error) {
      // A bad call from the page, or a lost message, must not break the page.
    }
  }

  function start() {
    script = document.currentScript;
    // By default the collector is next to this script: .../smstrack/t.js -> .../smstrack/collect
    // The defaults below are also in _OPTIONS of flask_smstrack/web/snippet.py.
    endpoint = option('api') || new URL('collect', script.src).href;
    cookieName = option('cookie') || '_smsclid';
    var days = parseFloat(option('cookie-days'));
    cookieSeconds = Math.round((days > 0 ? days : 30) * 86400);
    refused = navigator.globalPrivacyControl || option('respect-dnt') != null && navigator.doNotTrack == '1';

    // Last click wins: a click id in the URL replaces the one in the cookie.
    var param = option('param') || 'smsclid';
    var query = location.search;
    var fromUrl = new URLSearchParams(query).get(param);
    // The cookie's value: what follows "<name>=" up to the next ";".
    var fromCookie = ('; ' + document.cookie).split('; ' + cookieName + '=')[1];
    fromCookie = fromCookie && fromCookie.split(';')[0];
    if (isClickId(fromUrl)) {
      landingId = clickId = fromUrl;
      waiting.push({type: 'landing', click_id: landingId});
    } else if (isClickId(fromCookie)) {
      clickId = fromCookie;
    }

    // Without data-consent="required" consent is assumed; a browser signal refuses it.
    if (refused || option('consent') != 'required') smstrack('consent', true);

    // Replay the calls that the page made before this script loaded.
    (window.smstrack && window.smstrack.q || []).forEach(function (call) {
      smstrack.apply(0, call);
    });
    window.smstrack = smstrack;

    // Out of the address bar with it, keeping the path, the other parameters and the hash.
    if (fromUrl != null && option('keep-param') == null) {
      query = query.slice(1).split('&').filter(function (pair) {
        return pair.split('=')[0] != param;
      }).join('&');
      history.replaceState(history.state, '', location.pathname + (query ? '?' + query : '') + location.hash);
    }
  }

  try {
    start();
  } catch (error) {
    // The snippet stays out of the way of a page it cannot run on.
  }
})();
