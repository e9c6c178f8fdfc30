// Mounts Stripe's Payment Element on /signup (real Stripe mode only; the simulator uses Nest's
// stand-in form). Reads the publishable key, the subscription's client secret and the return
// URL from #payment-element, loads Stripe.js from js.stripe.com (allowed by /signup's CSP),
// and confirms the payment; Stripe then sends the browser to /pending.
(function () {
  "use strict";
  var host = document.getElementById("payment-element");
  if (!host || host.dataset.mounted) return;
  host.dataset.mounted = "true";
  var form = document.getElementById("stripe-payment-form");
  var errorBox = document.getElementById("payment-error");
  var button = document.getElementById("payment-submit");
  function start() {
    var stripe = window.Stripe(host.dataset.publishableKey);
    var elements = stripe.elements({ clientSecret: host.dataset.clientSecret });
    elements.create("payment").mount(host);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      errorBox.textContent = "";
      stripe
        .confirmPayment({
          elements: elements,
          confirmParams: { return_url: new URL(host.dataset.returnUrl, window.location.href).href },
        })
        .then(function (result) {
          if (result.error) {
            errorBox.textContent = result.error.message || "The payment failed.";
            button.disabled = false;
          }
        });
    });
  }
  if (window.Stripe) {
    start();
  } else {
    var script = document.createElement("script");
    script.src = "https://js.stripe.com/v3/";
    script.onload = start;
    script.onerror = function () {
      errorBox.textContent = "Stripe could not be loaded. Check your connection and reload the page.";
    };
    document.head.appendChild(script);
  }
})();
