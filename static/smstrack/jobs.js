/* flask-smstrack dashboard: the progress of a background job (a send, a
 * link check). An element with data-smstrack-job="<url of its JSON>" is
 * polled every second; its <progress> and status text follow the job, and
 * the page reloads when the job ends, to show what it did. */
(function (d) {
  'use strict';
  var box = d.querySelector('[data-smstrack-job]');
  if (!box || !window.fetch) return;
  var url = box.getAttribute('data-smstrack-job');
  var bar = box.querySelector('progress');
  var text = box.querySelector('.st-job-text');
  var fails = 0;

  function show(job) {
    if (job.total && bar) bar.max = job.total;
    if (job.done != null && bar) bar.value = job.done;
    if (!text) return;
    if (job.status === 'queued') text.textContent = 'Waiting for a worker…';
    else if (job.total) text.textContent = (job.done || 0) + ' of ' + job.total + ' done' + (job.message && job.message.indexOf('waiting') === 0 ? ' (' + job.message + ')' : '');
  }

  function poll() {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (job) {
        fails = 0;
        show(job);
        if (job.active) setTimeout(poll, 1000);
        else window.location.reload();
      })
      .catch(function () { fails += 1; setTimeout(poll, Math.min(1000 * fails, 10000)); });
  }
  setTimeout(poll, 1000);
})(document);
