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
 *   smstrack('consent', true);   // or false, with data-consent="required"
 *
 * Options are data-* attributes on its script tag:
 *   data-api             the collector's URL (default: "collect" next to this script)
 *   data-param           the URL parameter with the click id (default: smsclid)
 *   data-cookie          the cookie's name (default: _smsclid)
 *   data-cookie-domain   the cookie's domain (default: the page's host)
 *   data-cookie-days     the cookie's lifetime in days (default: 30)
 *   data-consent         "required": no cookie before smstrack('consent', true)
 *
 * Messages are JSON sent as text/plain (no CORS preflight), with sendBeacon
 * or else fetch with keepalive. Errors are swallowed: the snippet never
 * breaks the host page.
 *
 * This file is written to be read: the server minifies it when it serves it
 * (flask_smstrack/web/snippet.py), and a test keeps the result under budget.
 */
(function () {
  var CLICK_ID = /^[\w-]{1,64}$/;
  var script, endpoint, cookieName, cookieDomain, cookieSeconds;
  var landingId = '';  // the click id in this page's URL, if any
  var clickId = '';    // the click id that conversions are attributed to

  // The value of data-<name> on the script tag, or the fallback when it is missing or empty.
  function option(name, fallback) {
    return script.getAttribute('data-' + name) || fallback;
  }

  function isClickId(value) {
    return !!value && CLICK_ID.test(value);
  }

  function readCookie() {
    var pairs = document.cookie.split('; ');
    for (var i = 0; i < pairs.length; i++) {
      if (pairs[i].indexOf(cookieName + '=') === 0) {
        return pairs[i].slice(cookieName.length + 1);
      }
    }
    return '';
  }

  // An empty value and a lifetime of 0 remove the cookie.
  function writeCookie(value, seconds) {
    var cookie = cookieName + '=' + value + ';path=/;max-age=' + seconds + ';SameSite=Lax';
    if (location.protocol === 'https:') {
      cookie += ';Secure';
    }
    if (cookieDomain) {
      cookie += ';domain=' + cookieDomain;
    }
    document.cookie = cookie;
  }

  // JSON.stringify leaves out the fields for which this returns undefined.
  function withoutEmpty(key, value) {
    if (value !== null) {
      return value;
    }
  }

  function ignore() {}

  function send(message) {
    try {
      var body = JSON.stringify(message, withoutEmpty);
      if (navigator.sendBeacon && navigator.sendBeacon(endpoint, body)) {
        return;
      }
      fetch(endpoint, {
        method: 'POST',
        body: body,
        keepalive: true,
        mode: 'no-cors',
        credentials: 'include',
        headers: {'Content-Type': 'text/plain'}
      }).catch(ignore);
    } catch (error) {
      // A lost message must not break the host page.
    }
  }

  // The global: smstrack('conversion', {...}) or smstrack('consent', true or false).
  function smstrack(command, details) {
    try {
      if (command === 'consent' && typeof details === 'boolean') {
        if (!details) {
          writeCookie('', 0);
        } else if (landingId) {
          writeCookie(landingId, cookieSeconds);
        }
      } else if (command === 'conversion') {
        if (details === undefined) {
          details = {};
        }
        if (details && typeof details === 'object') {
          send({
            type: command,
            click_id: clickId || null,
            event: details.event,
            revenue: details.revenue,
            currency: details.currency,
            order_id: details.order_id,
            token: details.token
          });
        }
      }
    } catch (error) {
      // A bad call from the page is ignored.
    }
  }

  function start() {
    var scripts = document.querySelectorAll('script[src*="/t.js"]');
    script = document.currentScript || scripts[scripts.length - 1];
    if (!script) {
      return;
    }
    // By default the collector is next to this script: .../smstrack/t.js -> .../smstrack/collect
    // The defaults below are also in _OPTIONS of flask_smstrack/web/snippet.py.
    var src = script.src.split(/[?#]/)[0];
    endpoint = option('api', src.slice(0, src.lastIndexOf('/') + 1) + 'collect');
    cookieName = option('cookie', '_smsclid');
    cookieDomain = option('cookie-domain');
    var days = parseFloat(option('cookie-days'));
    if (!(days > 0)) {
      days = 30;
    }
    cookieSeconds = Math.round(days * 86400);

    // Last click wins: a click id in the URL replaces the one in the cookie.
    var fromUrl = new URLSearchParams(location.search).get(option('param', 'smsclid'));
    if (isClickId(fromUrl)) {
      landingId = fromUrl;
      clickId = fromUrl;
      if (option('consent') !== 'required') {
        writeCookie(landingId, cookieSeconds);
      }
      send({type: 'landing', click_id: landingId});
    } else {
      var fromCookie = readCookie();
      if (isClickId(fromCookie)) {
        clickId = fromCookie;
      }
    }

    // Replay the calls that the page made before this script loaded.
    var stub = window.smstrack;
    var queue = (stub && stub.q) || [];
    for (var i = 0; i < queue.length; i++) {
      var call = queue[i] || [];
      smstrack(call[0], call[1]);
    }
    window.smstrack = smstrack;
  }

  try {
    start();
  } catch (error) {
    // The snippet stays out of the way of a page it cannot run on.
  }
})();
