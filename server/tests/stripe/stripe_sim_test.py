#!/usr/bin/env python3
"""Drives Nest's Stripe simulator with Stripe's official Python client (`stripe`, pinned to
16.1.0, through its `StripeClient`): whatever this client accepts from the simulator, it accepts
from Stripe.

Written for Nest. By hand, against `nest simulate-stripe` (started with
NEST_STRIPE_SIM_WEBHOOK_URL=http://127.0.0.1:12112/webhooks/stripe,
STRIPE_WEBHOOK_SECRET=whsec_… and NEST_SIM_CONTROL_TOKEN=…):

    python3 -m venv /tmp/stripe-venv && /tmp/stripe-venv/bin/pip install stripe==16.1.0
    STRIPE_SIM_URL=http://127.0.0.1:12111 STRIPE_SECRET_KEY=sk_test_anything \\
    STRIPE_WEBHOOK_SECRET=whsec_… STRIPE_SIM_WEBHOOK_LISTEN=127.0.0.1:12112 \\
    STRIPE_SIM_CONTROL_TOKEN=… /tmp/stripe-venv/bin/python stripe_sim_test.py

Optional: STRIPE_SIM_WEBHOOK_LISTEN (host:port this script receives the simulator's webhooks
on, verified with STRIPE_WEBHOOK_SECRET; unset: the webhook checks are skipped),
STRIPE_SIM_CONTROL_TOKEN (the simulator's X-Sim-Token; unset: the control API checks are
skipped), STRIPE_SIM_PRICE / STRIPE_SIM_PRICE2 (monthly prices in one currency, default
price_sim_starter / price_sim_growth), STRIPE_SIM_DEADLINE (seconds, default 50). Prints one
line per check and exits 1 on the first failure (2 on bad settings). Talks to loopback only.
"""
import ipaddress
import itertools
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import requests
import stripe
from stripe import (
    CardError,
    IdempotencyError,
    InvalidRequestError,
    SignatureVerificationError,
    StripeClient,
    StripeError,
)

URL = os.environ.get("STRIPE_SIM_URL", "").rstrip("/")
KEY = os.environ.get("STRIPE_SECRET_KEY", "")
WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
LISTEN = os.environ.get("STRIPE_SIM_WEBHOOK_LISTEN", "")
CONTROL_TOKEN = os.environ.get("STRIPE_SIM_CONTROL_TOKEN", "")
PRICE = os.environ.get("STRIPE_SIM_PRICE", "price_sim_starter")
PRICE2 = os.environ.get("STRIPE_SIM_PRICE2", "price_sim_growth")
DEADLINE = int(os.environ.get("STRIPE_SIM_DEADLINE", "50"))
PINNED = "16.1.0"
RUN = "st" + uuid.uuid4().hex[:8]
created = []  # subscription ids to cancel on failure


def loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fail(name, detail):
    print(f"FAIL {name}: {detail}", flush=True)
    cleanup()
    sys.exit(1)


def check(name, fn):
    """Runs one check: fn returns a short detail string or raises."""
    try:
        detail = fn()
    except AssertionError as e:
        fail(name, str(e) or "assertion failed")
    except StripeError as e:
        fail(name, f"{type(e).__name__} HTTP {e.http_status} code={e.code!r}: {e.user_message}")
    except Exception as e:  # noqa: BLE001 - any client-side parse error is a finding
        fail(name, f"{type(e).__name__}: {e}")
    print(f"ok   {name}" + (f" ({detail})" if detail else ""), flush=True)
    return detail


def skip(name, why):
    print(f"skip {name}: {why}", flush=True)


def expect(error_type, fn, status):
    """fn must raise error_type (exactly that class: the client picks it from status and type)
    with this HTTP status; answers the error."""
    try:
        got = fn()
    except StripeError as e:
        assert type(e) is error_type, (
            f"{type(e).__name__} (wanted {error_type.__name__}): HTTP {e.http_status} {e.json_body!r}")
        assert e.http_status == status, f"HTTP {e.http_status} (wanted {status})"
        assert e.error is not None and e.error.message, f"no error object: {e.json_body!r}"
        assert e.request_id and e.request_id.startswith("req_"), f"request id {e.request_id!r}"
        return e
    raise AssertionError(f"no error (wanted {error_type.__name__}); got {got!r:.160}")


def cleanup():
    for sid in created:
        try:
            client.v1.subscriptions.cancel(sid)
        except Exception:  # noqa: BLE001 - best effort
            pass


def control(method, path, body=None):
    """The simulator's control API (not Stripe's; plain requests)."""
    r = requests.request(method, f"{URL}/_sim{path}", json=body, timeout=10,
                         headers={"X-Sim-Token": CONTROL_TOKEN})
    assert r.status_code < 300, f"{method} /_sim{path}: HTTP {r.status_code} {r.text[:160]!r}"
    return r.json() if r.content else None


# ----- webhooks: every POST the simulator makes, kept with its signature -----

hooks = []  # (stripe-signature header, raw body bytes)
hooks_lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with hooks_lock:
            hooks.append((self.headers.get("Stripe-Signature"), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def received(event_type, object_id, within=10.0):
    """The first webhook of this type about this object: (signature, body)."""
    deadline = time.monotonic() + within
    while True:
        with hooks_lock:
            for sig, body in hooks:
                try:
                    event = json.loads(body)
                except ValueError:
                    continue
                if (event.get("type") == event_type
                        and event.get("data", {}).get("object", {}).get("id") == object_id):
                    return sig, body
        assert time.monotonic() < deadline, (
            f"no {event_type} webhook for {object_id} within {within:.0f} s "
            f"({len(hooks)} webhooks received)")
        time.sleep(0.05)


# ----- settings -----

if not URL or not KEY:
    print("set STRIPE_SIM_URL (e.g. http://127.0.0.1:12111) and STRIPE_SECRET_KEY (sk_test_…)",
          file=sys.stderr)
    sys.exit(2)
if not loopback(urlparse(URL).hostname or ""):
    print(f"refusing {URL}: this script only talks to a simulator on loopback", file=sys.stderr)
    sys.exit(2)
listen_addr = None
if LISTEN:
    host, _, port = LISTEN.rpartition(":")
    if not loopback(host) or not port.isdigit():
        print(f"refusing STRIPE_SIM_WEBHOOK_LISTEN={LISTEN}: say 127.0.0.1:PORT", file=sys.stderr)
        sys.exit(2)
    if not WEBHOOK_SECRET.startswith("whsec_"):
        print("STRIPE_SIM_WEBHOOK_LISTEN needs STRIPE_WEBHOOK_SECRET (whsec_…, the simulator's)",
              file=sys.stderr)
        sys.exit(2)
    listen_addr = (host, int(port))
if stripe.VERSION != PINNED:
    print(f"stripe {stripe.VERSION} is installed; this script is pinned to {PINNED}",
          file=sys.stderr)
    sys.exit(2)

signal.signal(signal.SIGALRM, lambda *_: fail("overall", f"timed out after {DEADLINE} s"))
signal.alarm(DEADLINE)
if listen_addr:
    try:
        hook_server = ThreadingHTTPServer(listen_addr, Hook)
    except OSError as e:
        print(f"cannot listen on {LISTEN}: {e}", file=sys.stderr)
        sys.exit(2)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()

# No retries: every answer the checks see is the simulator's first.
client = StripeClient(KEY, base_addresses={"api": URL}, max_network_retries=0)
state = {}
email = f"{RUN}@example.com"


# ----- customers and prices -----

def create_customer():
    c = client.v1.customers.create(params={
        "email": email, "name": "Sim Test", "metadata": {"suite": RUN, "org": "42"}})
    assert isinstance(c, stripe.Customer), f"a {type(c).__name__}"
    assert c.id.startswith("cus_"), f"id {c.id!r}"
    assert c.email == email and c.name == "Sim Test", f"email {c.email!r} name {c.name!r}"
    assert c.metadata.to_dict() == {"suite": RUN, "org": "42"}, f"metadata {c.metadata!r}"
    assert c.livemode is False and isinstance(c.created, int), "livemode / created"
    r = c.last_response
    assert r.code == 200 and r.request_id and r.request_id.startswith("req_"), (
        f"HTTP {r.code}, request-id {r.request_id!r}")
    # The client sends an Idempotency-Key on every POST; Stripe echoes it.
    assert r.idempotency_key, "the client's own Idempotency-Key is not echoed"
    state["customer"] = c.id
    return f"{c.id}, Stripe-Version {r.headers.get('stripe-version')}"


def retrieve_customer():
    c = client.v1.customers.retrieve(state["customer"])
    assert c.id == state["customer"] and c.email == email, f"{c.id} {c.email!r}"
    assert c.metadata["suite"] == RUN and c.metadata["org"] == "42", f"metadata {c.metadata!r}"
    assert c.invoice_settings.default_payment_method is None, "a default payment method already"
    listed = client.v1.customers.list(params={"email": email})
    assert isinstance(listed, stripe.ListObject), f"a {type(listed).__name__}"
    assert [x.id for x in listed.data] == [c.id], f"list(email) gave {[x.id for x in listed]}"
    assert listed.has_more is False, "has_more"


def retrieve_prices():
    p = client.v1.prices.retrieve(PRICE, params={"expand": ["product"]})
    assert isinstance(p, stripe.Price) and p.id == PRICE, f"{type(p).__name__} {p.id!r}"
    assert p.type == "recurring" and p.recurring.interval == "month", (
        f"type {p.type!r}, recurring {p.recurring!r}")
    assert isinstance(p.unit_amount, int) and p.unit_amount > 0, f"unit_amount {p.unit_amount!r}"
    assert isinstance(p.product, stripe.Product) and p.product.name, f"product {p.product!r}"
    p2 = client.v1.prices.retrieve(PRICE2)
    assert isinstance(p2.product, str) and p2.product.startswith("prod_"), "product not an id"
    assert p2.currency == p.currency, f"{PRICE2} is in {p2.currency}, {PRICE} in {p.currency}"
    assert p2.unit_amount > p.unit_amount, f"{PRICE2} is not dearer than {PRICE}"
    state["amount"], state["amount2"], state["currency"] = p.unit_amount, p2.unit_amount, p.currency
    return (f"{PRICE} {p.unit_amount} {p.currency} ({p.product.name}), "
            f"{PRICE2} {p2.unit_amount}")


def unknown_price():
    # GET /v1/prices (list) is not simulated: Nest reads the prices it is configured with.
    e = expect(InvalidRequestError, lambda: client.v1.prices.retrieve("price_nope_" + RUN), 404)
    assert e.code == "resource_missing" and e.param == "id", f"code {e.code!r} param {e.param!r}"
    return e.user_message


# ----- a subscription paid by card -----

def subscribe(customer, price):
    sub = client.v1.subscriptions.create(params={
        "customer": customer,
        "items": [{"price": price}],
        "payment_behavior": "default_incomplete",
        "payment_settings": {"save_default_payment_method": "on_subscription"},
        "metadata": {"suite": RUN},
        "expand": ["latest_invoice.confirmation_secret", "latest_invoice.payments"],
    })
    created.append(sub.id)
    return sub


def create_subscription():
    sub = subscribe(state["customer"], PRICE)
    assert isinstance(sub, stripe.Subscription) and sub.id.startswith("sub_"), f"{sub.id!r}"
    assert sub.status == "incomplete", f"status {sub.status!r}"
    assert sub.customer == state["customer"], f"customer {sub.customer!r}"
    item = sub["items"].data[0]
    assert isinstance(item, stripe.SubscriptionItem) and item.price.id == PRICE, f"item {item!r}"
    assert item.current_period_end > item.current_period_start, "item period"
    inv = sub.latest_invoice
    assert isinstance(inv, stripe.Invoice), f"latest_invoice is a {type(inv).__name__}"
    assert inv.status == "open" and inv.amount_due == state["amount"], (
        f"invoice {inv.status!r} due {inv.amount_due}")
    assert inv.billing_reason == "subscription_create", f"billing_reason {inv.billing_reason!r}"
    assert inv.parent.subscription_details.subscription == sub.id, f"parent {inv.parent!r}"
    secret = inv.confirmation_secret
    assert secret is not None and secret.type == "payment_intent", f"confirmation_secret {secret!r}"
    assert secret.client_secret and "_secret_" in secret.client_secret, "no client_secret"
    payments = inv.payments.data
    assert len(payments) == 1 and isinstance(payments[0], stripe.InvoicePayment), (
        f"payments {inv.payments!r}")
    pi = payments[0].payment.payment_intent
    assert isinstance(pi, str) and secret.client_secret.startswith(pi + "_secret_"), (
        f"payment intent {pi!r} does not own the client secret")
    state.update(sub=sub.id, item=item.id, invoice=inv.id, pi=pi, secret=secret.client_secret,
                 period_end=item.current_period_end)
    return f"{sub.id} incomplete, {inv.id} open {inv.amount_due}, {pi}"


def retrieve_payment_intent():
    pi = client.v1.payment_intents.retrieve(state["pi"])
    assert isinstance(pi, stripe.PaymentIntent), f"a {type(pi).__name__}"
    assert pi.status == "requires_payment_method", f"status {pi.status!r}"
    assert pi.amount == state["amount"] and pi.currency == state["currency"], (
        f"{pi.amount} {pi.currency}")
    assert pi.client_secret == state["secret"] and pi.customer == state["customer"], "secret/customer"
    assert pi.last_payment_error is None, f"last_payment_error {pi.last_payment_error!r}"
    return pi.status


def declined(payment_method, decline_code):
    def run():
        e = expect(CardError, lambda: client.v1.payment_intents.confirm(
            state["pi"], params={"payment_method": payment_method}), 402)
        assert e.code == "card_declined", f"code {e.code!r}"
        assert e.error.type == "card_error" and e.error.decline_code == decline_code, (
            f"type {e.error.type!r} decline_code {e.error.decline_code!r}")
        assert e.error.charge and e.error.charge.startswith("ch_"), f"charge {e.error.charge!r}"
        pi = e.error.payment_intent
        assert isinstance(pi, stripe.PaymentIntent) and pi.id == state["pi"], (
            f"error.payment_intent {pi!r:.120}")
        assert pi.status == "requires_payment_method", f"payment intent {pi.status!r}"
        assert pi.last_payment_error.decline_code == decline_code, "last_payment_error"
        return f"{e.code}/{e.error.decline_code}: {e.user_message}"
    return run


def after_decline():
    inv = client.v1.invoices.retrieve(state["invoice"])
    assert inv.status == "open" and inv.amount_paid == 0, f"invoice {inv.status!r}"
    assert inv.attempted is True and inv.attempt_count >= 1, f"attempt_count {inv.attempt_count}"
    sub = client.v1.subscriptions.retrieve(state["sub"])
    assert sub.status == "incomplete", f"subscription {sub.status!r}"
    return f"invoice open after {inv.attempt_count} attempts, subscription incomplete"


def confirm_visa():
    pi = client.v1.payment_intents.confirm(state["pi"], params={"payment_method": "pm_card_visa"})
    assert isinstance(pi, stripe.PaymentIntent), f"a {type(pi).__name__}"
    assert pi.status == "succeeded" and pi.amount_received == state["amount"], (
        f"{pi.status!r}, received {pi.amount_received}")
    assert pi.last_payment_error is None, "last_payment_error kept"
    assert pi.payment_method and pi.payment_method.startswith("pm_"), f"pm {pi.payment_method!r}"
    state["pm"] = pi.payment_method
    return f"{pi.status}, {pi.amount_received} received, {pi.payment_method}"


def paid_and_active():
    inv = client.v1.invoices.retrieve(state["invoice"])
    assert inv.status == "paid" and inv.amount_paid == state["amount"], (
        f"invoice {inv.status!r} paid {inv.amount_paid}")
    assert inv.amount_remaining == 0 and inv.status_transitions.paid_at, "remaining / paid_at"
    sub = client.v1.subscriptions.retrieve(state["sub"])
    assert sub.status == "active", f"subscription {sub.status!r}"
    assert sub.default_payment_method == state["pm"], f"default pm {sub.default_payment_method!r}"
    assert sub.latest_invoice == state["invoice"], f"latest_invoice {sub.latest_invoice!r}"
    return f"{inv.id} paid, {sub.id} active"


def confirm_again():
    e = expect(InvalidRequestError, lambda: client.v1.payment_intents.confirm(
        state["pi"], params={"payment_method": "pm_card_visa"}), 400)
    assert e.code == "payment_intent_unexpected_state", f"code {e.code!r}"
    return e.code


# ----- idempotency, expansion, errors -----

def idempotent_replay():
    key = f"{RUN}-customer"
    params = {"email": f"{RUN}-idem@example.com"}
    a = client.v1.customers.create(params=params, options={"idempotency_key": key})
    b = client.v1.customers.create(params=params, options={"idempotency_key": key})
    assert a.id == b.id, f"two customers: {a.id}, {b.id}"
    assert b.last_response.headers.get("idempotent-replayed") == "true", "no Idempotent-Replayed"
    assert b.last_response.idempotency_key == key, "key not echoed"
    listed = client.v1.customers.list(params={"email": params["email"]})
    assert len(listed.data) == 1, f"{len(listed.data)} customers with that email"
    state["idem_key"] = key
    return f"{a.id} twice, Idempotent-Replayed: true"


def idempotency_mismatch():
    e = expect(IdempotencyError, lambda: client.v1.customers.create(
        params={"email": f"{RUN}-other@example.com"},
        options={"idempotency_key": state["idem_key"]}), 400)
    assert e.error.type == "idempotency_error", f"type {e.error.type!r}"
    return e.user_message[:70] + "…"


def idempotency_after_validation_error():
    # Stripe saves no result when the parameters fail validation: the same key then works.
    key = f"{RUN}-invalid-first"
    expect(InvalidRequestError, lambda: client.v1.customers.create(
        params={"email": f"{RUN}-v@example.com", "colour": "red"},
        options={"idempotency_key": key}), 400)
    c = client.v1.customers.create(params={"email": f"{RUN}-v@example.com"},
                                   options={"idempotency_key": key})
    assert c.id.startswith("cus_"), f"customer {c.id!r}"
    return f"{c.id} created with the key a rejected request used"


def expand_on_retrieve():
    plain = client.v1.subscriptions.retrieve(state["sub"])
    assert isinstance(plain.latest_invoice, str) and isinstance(plain.customer, str), "expanded"
    sub = client.v1.subscriptions.retrieve(state["sub"], params={"expand": [
        "customer", "latest_invoice.payments.data.payment.payment_intent"]})
    assert isinstance(sub.customer, stripe.Customer) and sub.customer.email == email, (
        f"customer {sub.customer!r:.80}")
    inv = sub.latest_invoice
    assert isinstance(inv, stripe.Invoice) and inv.id == state["invoice"], "latest_invoice"
    assert "confirmation_secret" not in inv, "confirmation_secret without being expanded"
    pi = inv.payments.data[0].payment.payment_intent
    assert isinstance(pi, stripe.PaymentIntent) and pi.status == "succeeded", f"pi {pi!r:.80}"
    inv2 = client.v1.invoices.retrieve(state["invoice"], params={"expand": ["customer"]})
    assert isinstance(inv2.customer, stripe.Customer), "invoice customer not expanded"
    e = expect(InvalidRequestError, lambda: client.v1.subscriptions.retrieve(
        state["sub"], params={"expand": ["nothing_here"]}), 400)
    assert e.param == "expand", f"param {e.param!r}"
    return "customer, latest_invoice.payments.data.payment.payment_intent; bad path refused"


def not_found():
    e = expect(InvalidRequestError,
               lambda: client.v1.customers.retrieve("cus_missing" + RUN), 404)
    assert e.code == "resource_missing" and e.param == "id", f"code {e.code!r} param {e.param!r}"
    e2 = expect(InvalidRequestError, lambda: client.v1.subscriptions.create(params={
        "customer": state["customer"], "items": [{"price": "price_missing"}]}), 400)
    assert e2.code == "resource_missing" and e2.param == "items[0][price]", (
        f"code {e2.code!r} param {e2.param!r}")
    return f"{e.user_message}; {e2.user_message}"


def unknown_parameter():
    e = expect(InvalidRequestError, lambda: client.v1.customers.create(
        params={"email": email, "colour": "red"}), 400)
    assert e.code == "parameter_unknown" and e.param == "colour", (
        f"code {e.code!r} param {e.param!r}")
    return e.user_message


# ----- changes, previews, cancellation -----

def preview_upgrade():
    now = int(time.time())
    inv = client.v1.invoices.create_preview(params={
        "customer": state["customer"],
        "subscription": state["sub"],
        "subscription_details": {
            "items": [{"id": state["item"], "price": PRICE2}],
            "proration_behavior": "create_prorations",
            "proration_date": now,
        },
    })
    assert isinstance(inv, stripe.Invoice), f"a {type(inv).__name__}"
    assert inv.status == "draft" and inv.customer == state["customer"], f"{inv.status!r}"
    lines = inv.lines.data
    prorations = [li for li in lines if li.parent.subscription_item_details.proration]
    regular = [li for li in lines if not li.parent.subscription_item_details.proration]
    assert any(li.amount < 0 for li in prorations), f"no credit line: {[li.amount for li in lines]}"
    assert any(li.amount > 0 for li in prorations), f"no charge line: {[li.amount for li in lines]}"
    assert [li.amount for li in regular] == [state["amount2"]], (
        f"next period lines {[li.amount for li in regular]}")
    assert regular[0].pricing.price_details.price == PRICE2, "next period's price"
    assert inv.total == sum(li.amount for li in lines), f"total {inv.total}"
    assert inv.parent.subscription_details.subscription_proration_date == now, "proration date"
    return f"{len(prorations)} proration lines, total {inv.total}"


def upgrade_now():
    sub = client.v1.subscriptions.update(state["sub"], params={
        "items": [{"id": state["item"], "price": PRICE2}],
        "proration_behavior": "always_invoice",
        "expand": ["latest_invoice"],
    })
    assert sub.status == "active", f"status {sub.status!r}"
    assert sub["items"].data[0].price.id == PRICE2, "price not changed"
    inv = sub.latest_invoice
    assert isinstance(inv, stripe.Invoice) and inv.id != state["invoice"], "no new invoice"
    assert inv.billing_reason == "subscription_update", f"billing_reason {inv.billing_reason!r}"
    assert inv.status == "paid" and inv.amount_paid == inv.total > 0, (
        f"{inv.status!r} paid {inv.amount_paid} of {inv.total}")
    return f"{inv.id} paid {inv.amount_paid} with the saved card"


def cancel_at_period_end():
    sub = client.v1.subscriptions.update(state["sub"], params={"cancel_at_period_end": True})
    assert sub.cancel_at_period_end is True and sub.status == "active", (
        f"{sub.cancel_at_period_end} {sub.status!r}")
    assert sub.cancel_at == state["period_end"], f"cancel_at {sub.cancel_at} != {state['period_end']}"
    assert sub.cancellation_details.reason == "cancellation_requested", "cancellation_details"
    back = client.v1.subscriptions.update(state["sub"], params={"cancel_at_period_end": False})
    assert back.cancel_at_period_end is False and back.cancel_at is None, "not undone"
    return f"cancel_at {sub.cancel_at}, then undone"


def cancel_now():
    sub = client.v1.subscriptions.cancel(state["sub"])
    assert isinstance(sub, stripe.Subscription) and sub.status == "canceled", f"{sub.status!r}"
    assert sub.canceled_at and sub.ended_at, f"canceled_at {sub.canceled_at} ended_at {sub.ended_at}"
    created.remove(state["sub"])
    again = expect(InvalidRequestError, lambda: client.v1.subscriptions.cancel(state["sub"]), 404)
    assert again.code == "resource_missing", f"code {again.code!r}"
    listed = client.v1.subscriptions.list(params={"customer": state["customer"], "status": "all"})
    assert [(s.id, s.status) for s in listed] == [(state["sub"], "canceled")], (
        f"list gave {[(s.id, s.status) for s in listed]}")
    active = client.v1.subscriptions.list(params={"customer": state["customer"]})
    assert active.data == [], "a canceled subscription is listed by default"
    return "canceled; cancelling again is resource_missing"


# ----- events and webhooks -----

def events():
    listed = client.v1.events.list(params={"type": "invoice.paid", "limit": 100})
    ours = [e for e in listed.auto_paging_iter() if e.data.object.id == state["invoice"]]
    assert len(ours) == 1, f"{len(ours)} invoice.paid events for {state['invoice']}"
    event = client.v1.events.retrieve(ours[0].id)
    assert isinstance(event, stripe.Event) and event.type == "invoice.paid", f"{event.type!r}"
    assert isinstance(event.data.object, stripe.Invoice), f"data.object {type(event.data.object)}"
    assert event.data.object.status == "paid", f"invoice in event {event.data.object.status!r}"
    assert event.api_version and event.livemode is False, "api_version / livemode"
    # Pagination the client drives with starting_after.
    pages = client.v1.events.list(params={"type": "invoice.*", "limit": 2})
    seen = [e.id for e in itertools.islice(pages.auto_paging_iter(), 7)]
    assert len(seen) == len(set(seen)) == 7, f"paged through {seen}"
    assert all(client.v1.events.retrieve(i).type.startswith("invoice.") for i in seen[:3]), "type"
    state["event"] = event.id
    return f"{event.id}; 7 invoice.* events, 2 a page"


def webhook():
    sig, body = received("invoice.paid", state["invoice"])
    event = client.construct_event(body, sig, WEBHOOK_SECRET)
    assert isinstance(event, stripe.Event) and event.type == "invoice.paid", f"{event.type!r}"
    assert event.id == state["event"], f"webhook {event.id} != listed {state['event']}"
    assert isinstance(event.data.object, stripe.Invoice), f"data.object {type(event.data.object)}"
    changed = body.replace(b'"paid"', b'"open"')
    assert changed != body, "no status in the payload"
    for wrong in (lambda: client.construct_event(body, sig, "whsec_wrong"),
                  lambda: client.construct_event(changed, sig, WEBHOOK_SECRET)):
        try:
            wrong()
        except SignatureVerificationError:
            continue
        raise AssertionError("a wrong secret or a changed body verified")
    return f"{event.id} verified; wrong secret and changed body refused"


def webhook_deliveries():
    deadline = time.monotonic() + 5
    while True:  # the simulator records a delivery once the endpoint has answered
        deliveries = control("GET", "/deliveries")["deliveries"]
        ours = [d for d in deliveries if d["event_id"] == state["event"]]
        if ours or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert ours and ours[0]["status"] == 200 and ours[0]["attempt"] == 1, (
        f"deliveries of {state['event']}: {ours}")
    return f"{state['event']} answered 200 at the first attempt"


# ----- the control API: a scripted decline and a renewal -----

def scripted_decline():
    c = client.v1.customers.create(params={"email": f"{RUN}-ctl@example.com"})
    sub = subscribe(c.id, PRICE)
    pi = sub.latest_invoice.payments.data[0].payment.payment_intent
    control("POST", "/decline-next", {"customer": c.id})
    e = expect(CardError, lambda: client.v1.payment_intents.confirm(
        pi, params={"payment_method": "pm_card_visa"}), 402)
    assert e.error.decline_code == "generic_decline", f"decline_code {e.error.decline_code!r}"
    ok = client.v1.payment_intents.confirm(pi, params={"payment_method": "pm_card_visa"})
    assert ok.status == "succeeded", f"retry {ok.status!r}"
    state["ctl_sub"] = sub.id
    return f"{e.error.decline_code}, then succeeded"


def renewal():
    sub_id = state["ctl_sub"]
    before = client.v1.subscriptions.retrieve(sub_id)
    out = control("POST", f"/subscriptions/{sub_id}/renew")
    assert out.get("renewed") is True and out.get("paid") is True, f"renew answered {out}"
    sub = client.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    inv = sub.latest_invoice
    assert inv.id == out["invoice"] and inv.billing_reason == "subscription_cycle", (
        f"{inv.id} {inv.billing_reason!r}")
    assert inv.status == "paid" and inv.amount_paid == state["amount"], f"{inv.status!r}"
    item = sub["items"].data[0]
    assert item.current_period_start == before["items"].data[0].current_period_end, "period"
    client.v1.subscriptions.cancel(sub_id)
    created.remove(sub_id)
    return f"{inv.id} paid, period from {item.current_period_start}"


check("customers.create", create_customer)
check("customers.retrieve, customers.list(email)", retrieve_customer)
check("prices.retrieve(expand product)", retrieve_prices)
check("prices.retrieve(unknown)", unknown_price)
check("subscriptions.create(default_incomplete, confirmation_secret)", create_subscription)
check("payment_intents.retrieve", retrieve_payment_intent)
check("payment_intents.confirm(pm_card_chargeDeclined) -> CardError",
      declined("pm_card_chargeDeclined", "generic_decline"))
check("payment_intents.confirm(insufficient funds) -> CardError",
      declined("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"))
check("after the declines", after_decline)
check("payment_intents.confirm(pm_card_visa)", confirm_visa)
check("invoice paid, subscription active", paid_and_active)
check("confirm a succeeded intent -> InvalidRequestError", confirm_again)
check("idempotency_key replays", idempotent_replay)
check("idempotency_key with other params -> IdempotencyError", idempotency_mismatch)
check("idempotency_key after a validation error is not spent", idempotency_after_validation_error)
check("expand[] on retrieve", expand_on_retrieve)
check("unknown ids -> InvalidRequestError", not_found)
check("unknown parameter -> InvalidRequestError", unknown_parameter)
check("invoices.create_preview(prorations)", preview_upgrade)
check("subscriptions.update(items, always_invoice)", upgrade_now)
check("subscriptions.update(cancel_at_period_end)", cancel_at_period_end)
check("subscriptions.cancel, subscriptions.list", cancel_now)
check("events.list, events.retrieve, auto_paging_iter", events)
if listen_addr:
    check("webhook invoice.paid, construct_event", webhook)
else:
    skip("webhooks", "set STRIPE_SIM_WEBHOOK_LISTEN and STRIPE_WEBHOOK_SECRET")
if CONTROL_TOKEN:
    if listen_addr:
        check("/_sim/deliveries", webhook_deliveries)
    check("/_sim/decline-next, then a retry pays", scripted_decline)
    check("/_sim/subscriptions/{id}/renew", renewal)
else:
    skip("control API", "set STRIPE_SIM_CONTROL_TOKEN")
print("all checks passed", flush=True)
