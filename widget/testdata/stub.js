// The snippet's stub, plus calls made before widget.js loads. External, so
// the page works under script-src 'self'.
window.lifeline=window.lifeline||function(){(lifeline.q=lifeline.q||[]).push(arguments)};
lifeline('identify', {id: 'u_42', name: 'Ava', email: 'ava@example.com', hash: 'deadbeef', attributes: {plan: 'pro'}});
lifeline('context', {cart: '42.00'});
lifeline('track', 'queued_before_load', {step: 'cart'});
lifeline('on', 'ready', function () { document.documentElement.setAttribute('data-ready', '1'); });
['error', 'offer', 'offer:accepted', 'offer:declined', 'open', 'close', 'message', 'unread'].forEach(function (n) {
  lifeline('on', n, function (d) {
    var seen = JSON.parse(document.documentElement.getAttribute('data-events') || '[]');
    seen.push(n);
    document.documentElement.setAttribute('data-events', JSON.stringify(seen));
  });
});
lifeline('nope');
lifeline('identify', 42);
// The page's globals before widget.js: the widget may add only "lifeline".
document.documentElement.setAttribute('data-globals', JSON.stringify(Object.keys(window)));
