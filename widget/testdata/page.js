// The fixture page's own behaviour: ways to struggle.
document.getElementById('live').addEventListener('click', function () {
  var p = document.createElement('p');
  p.textContent = 'changed';
  document.getElementById('out').appendChild(p);
});
document.getElementById('throw').addEventListener('click', function () {
  throw new Error('Checkout failed for ava@example.com with card 4000 0000 0000 0002');
});
document.getElementById('reject').addEventListener('click', function () {
  Promise.reject(new Error('rejected token abcdef0123456789abcdef0123456789'));
});
document.getElementById('fail').addEventListener('click', function () {
  fetch('/t/fail/123?card=hunter2-SECRET-4242', {method: 'POST', body: 'x'}).catch(function () {});
});
document.getElementById('ok').addEventListener('click', function () {
  fetch('/t/ok');
});
document.getElementById('xhr').addEventListener('click', function () {
  var x = new XMLHttpRequest();
  x.open('GET', '/t/missing/550e8400-e29b-41d4-a716-446655440000?q=hunter2-SECRET-4242');
  x.send();
});
document.getElementById('nav').addEventListener('click', function () {
  history.pushState({}, '', '/t/orders/123?utm_source=mail&secret=hunter2-SECRET-4242#frag');
});
document.getElementById('addr').addEventListener('submit', function (e) {
  e.preventDefault();
});
