/* flask-smstrack dashboard: copy buttons, the numbers of a chart's bar or a
 * heatmap's square on hover and tap, and a message's encoding and segments
 * as it is typed. The pages work without it. */
(function (d) {
  'use strict';

  function flashLabel(button, text) {
    var old = button.getAttribute('data-label') || button.textContent;
    button.setAttribute('data-label', old);
    button.textContent = text;
    clearTimeout(button._stTimer);
    button._stTimer = setTimeout(function () { button.textContent = old; }, 1800);
  }

  function selectText(el) {
    var range = d.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function copy(button) {
    var target = d.getElementById(button.getAttribute('data-copy'));
    if (!target) return;
    var text = target.textContent;
    function fallback() {
      selectText(target);
      var ok = false;
      try { ok = d.execCommand('copy'); } catch (e) { ok = false; }
      flashLabel(button, ok ? 'Copied' : 'Selected: copy it');
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { flashLabel(button, 'Copied'); }, fallback);
    } else {
      fallback();
    }
  }

  // A chart's bars name their bucket (data-i); the bucket's words are on
  // the row of the chart's table. A heatmap's squares carry their own title.
  function show(el) {
    var box = el.closest('[data-st-chart]');
    if (!box) return;
    var out = box.querySelector('[data-st-readout]'), i = el.getAttribute('data-i'), text, picked;
    if (i !== null) {
      var row = box.querySelectorAll('tr[data-tip]')[+i];
      text = row && row.getAttribute('data-tip');
      picked = box.querySelectorAll('[data-i="' + i + '"]');
    } else {
      text = el.getAttribute('title');
      picked = [el];
    }
    if (!text || !out) return;
    out.textContent = text;
    Array.prototype.forEach.call(box.querySelectorAll('.st-picked'), function (x) { x.classList.remove('st-picked'); });
    Array.prototype.forEach.call(picked, function (x) { x.classList.add('st-picked'); });
  }

  function target(event) {
    var t = event.target;
    return t.closest && t.closest('[data-st-chart] [data-i], [data-st-chart] td[title]');
  }

  d.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('[data-copy]');
    if (button) { copy(button); return; }
    var tip = target(event);
    if (tip) show(tip);
  });
  d.addEventListener('mouseover', function (event) {
    var tip = target(event);
    if (tip) show(tip);
  });

  // A message's encoding and segments, from the API, as it is typed.
  function preview(area) {
    var form = area.form;
    var out = form && form.querySelector('[data-live="' + area.name + '"]');
    var token = form && form.querySelector('input[name=csrf_token]');
    if (!out || !token) return;
    var more = form.querySelector('[data-live-warnings="' + area.name + '"]');
    function others(list) {
      if (!more) return;
      more.textContent = list.join(' ');
      more.hidden = !list.length;
    }
    if (!area.value.trim()) { out.textContent = ''; others([]); return; }
    fetch(form.getAttribute('data-preview-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': token.value },
      body: JSON.stringify(form.hasAttribute('data-campaign-id')
        ? { text: area.value, campaign_id: +form.getAttribute('data-campaign-id') } : { text: area.value })
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (p) {
      if (!p) { out.textContent = ''; others([]); return; }
      // The opt-out warning (and any other but the segment's) on a line of its own.
      others((p.warnings || []).filter(function (w) { return w !== p.warning; }));
      var text = p.encoding + ' · ' + p.characters + ' characters · ' + p.segments +
        (p.segments === 1 ? ' segment' : ' segments') + (p.warning ? ' — ' + p.warning : '') +
        (p.unknown && p.unknown.length ? ' Not in the recipients\' file: {' + p.unknown.join('}, {') + '}.' : '');
      out.textContent = text;
      out.classList.toggle('st-warning', !!p.warning);
    }, function () { out.textContent = ''; others([]); });
  }
  d.addEventListener('input', function (event) {
    var area = event.target;
    if (!area.matches || !area.matches('textarea[data-preview]')) return;
    clearTimeout(area._stTimer);
    area._stTimer = setTimeout(function () { preview(area); }, 250);
  });
  Array.prototype.forEach.call(d.querySelectorAll('textarea[data-preview]'), function (area) {
    if (area.value.trim()) preview(area);
  });

  // A table wider than its card: "scroll →" under it while there is more
  // to its right (the stylesheet shows the cue and the edge shadows).
  function measure() {
    Array.prototype.forEach.call(d.querySelectorAll('.st-scroll'), function (box) {
      var cue = box.nextElementSibling;
      if (!cue || !cue.classList.contains('st-scrollcue')) {
        cue = d.createElement('p');
        cue.className = 'st-scrollcue';
        cue.setAttribute('aria-hidden', 'true');
        cue.textContent = 'scroll →';
        box.parentNode.insertBefore(cue, box.nextSibling);
      }
      var more = box.scrollWidth - box.clientWidth - box.scrollLeft > 2;
      if (more) box.setAttribute('data-st-overflow', ''); else box.removeAttribute('data-st-overflow');
    });
  }
  measure();
  window.addEventListener('resize', measure);
  d.addEventListener('toggle', measure, true);
  d.addEventListener('scroll', function (event) {
    if (event.target.classList && event.target.classList.contains('st-scroll')) measure();
  }, true);
})(document);
