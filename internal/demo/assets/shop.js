// The demo shop's behaviour. It tells Lifeline only what a real shop would:
// that a payment was declined, that a coupon was rejected, the cart value.
// It never passes anything the visitor typed to lifeline().
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var PRICE = 49, SHIPPING = 4.9;
  var qty = 1, cart = 0;
  var euro = function (n) { return '€' + n.toFixed(2); };

  function render() {
    if (!$('qty')) return;
    $('qty').textContent = String(qty);
    $('sum-qty').textContent = String(qty);
    $('sum-sub').textContent = euro(PRICE * qty);
    $('sum-total').textContent = euro(PRICE * qty + SHIPPING);
    $('pay').textContent = 'Pay ' + euro(PRICE * qty + SHIPPING);
  }

  function post(url, body) {
    return fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, status: r.status, body: j}; }); });
  }

  function say(el, text, kind) {
    el.textContent = text;
    el.className = 'msg ' + (kind || '');
  }

  if ($('qty-plus')) {
    $('qty-plus').addEventListener('click', function () { qty = Math.min(9, qty + 1); render(); });
    $('qty-minus').addEventListener('click', function () { qty = Math.max(1, qty - 1); render(); });
    $('add').addEventListener('click', function () {
      cart += qty;
      $('cart-count').textContent = String(cart);
      lifeline('context', {cart_value: (PRICE * cart).toFixed(2), cart_items: String(cart)});
      lifeline('track', 'add_to_cart');
    });

    $('track').addEventListener('click', function () {
      // A real bug: the order has no tracking yet.
      var order = {id: 'LC-10482'};
      $('track-out').textContent = 'Status: ' + order.tracking.status;
    });

    $('coupon').addEventListener('submit', function (e) {
      e.preventDefault();
      var msg = $('coupon-msg');
      say(msg, 'Checking…');
      post('/demo/api/coupon', {code: $('coupon-code').value}).then(function (r) {
        if (r.ok) return say(msg, 'Coupon applied.', 'good');
        say(msg, r.body.message || 'That code didn’t work.', 'bad');
        lifeline('track', 'coupon_rejected');
      }, function () { say(msg, 'Could not reach the shop. Try again.', 'bad'); });
    });

    $('checkout').addEventListener('submit', function (e) {
      e.preventDefault();
      var msg = $('pay-msg');
      var btn = $('pay');
      btn.disabled = true;
      say(msg, 'Processing payment…');
      post('/demo/api/pay', {card: $('card').value}).then(function (r) {
        btn.disabled = false;
        if (r.ok) return say(msg, r.body.message + ' Order ' + r.body.order + '.', 'good');
        say(msg, r.body.message || 'Payment failed.', 'bad');
        if (r.status === 402) lifeline('error', 'Card declined');
      }, function () {
        btn.disabled = false;
        say(msg, 'Could not reach the payment service. Try again.', 'bad');
      });
    });
    render();
  }

  if ($('cancel')) {
    // The cancel button "works" only in the sense that nothing happens:
    // a dead click, on purpose.
    $('cancel').addEventListener('submit', function (e) { e.preventDefault(); });
  }
})();
