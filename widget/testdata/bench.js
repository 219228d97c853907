// Measures main-thread time per captured click and per captured error,
// each dispatched synchronously through the widget's listeners.
// Returns medians and 95th percentiles in milliseconds.
window.benchCapture = function (n) {
  var q = function (a, p) { a = a.slice().sort(function (x, y) { return x - y; }); return a[Math.min(a.length - 1, Math.floor(a.length * p))]; };
  // run times each dispatch on its own (for the median and p95) and then a
  // second batch as a whole (for the mean, below the timer's resolution).
  var run = function (target, make) {
    var t = [];
    for (var i = 0; i < n; i++) {
      var ev = make(i);
      var t0 = performance.now();
      target.dispatchEvent(ev);
      t.push(performance.now() - t0);
    }
    var evs = [];
    for (i = 0; i < n; i++) evs.push(make(n + i));
    var b0 = performance.now();
    for (i = 0; i < n; i++) target.dispatchEvent(evs[i]);
    t.mean = (performance.now() - b0) / n;
    return t;
  };
  var click = function (i) { return new MouseEvent('click', {bubbles: true, cancelable: true, clientX: 20 + (i % 25) * 40, clientY: 100 + (i % 7) * 40}); };
  // The error path: distinct messages so none is deduplicated, and a clock
  // that moves a second per call so the rate limit never drops one.
  var realNow = Date.now, fake = realNow();
  Date.now = function () { return (fake += 1000); };
  var err = function (i) {
    var e = new Error('Cannot read properties of undefined (reading \'total\') #' + i);
    return new ErrorEvent('error', {message: e.message, error: e, filename: location.origin + '/t/app.js', lineno: 10, colno: 5, cancelable: true});
  };
  var btn = document.getElementById('buy'), txt = document.querySelector('.text');
  var onBtn = run(btn, click), onText = run(txt, click), errors = run(window, err);
  lifeline('consent', {signals: false});
  var baseClick = run(btn, click), baseError = run(window, err);
  lifeline('consent', {signals: true});
  Date.now = realNow;
  return {
    isolated: !!window.crossOriginIsolated,
    clickButton: [q(onBtn, .5), q(onBtn, .95), onBtn.mean],
    clickText: [q(onText, .5), q(onText, .95), onText.mean],
    error: [q(errors, .5), q(errors, .95), errors.mean],
    baseClick: [q(baseClick, .5), 0, baseClick.mean],
    baseError: [q(baseError, .5), 0, baseError.mean]
  };
};
