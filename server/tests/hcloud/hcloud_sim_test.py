#!/usr/bin/env python3
"""Drives Nest's Hetzner Cloud simulator with Hetzner's official Python client (`hcloud`, pinned
to 2.27.0): whatever this client accepts from the simulator, it accepts from Hetzner.

Written for Nest (server/tests/provisioning.rs runs it against a simulator it starts; CI
installs the client into $HOME/.cache/nest-venv). By hand, against `nest simulate-hetzner`:

    HCLOUD_SIM_URL=http://127.0.0.1:3199/v1 HCLOUD_TOKEN=anything python3 hcloud_sim_test.py

Optional: HCLOUD_SIM_SSH_KEY (an SSH key id or name, default "1"), HCLOUD_SIM_TYPE /
HCLOUD_SIM_TYPE2 (cx22 / cx32), HCLOUD_SIM_LOCATION (fsn1), HCLOUD_SIM_IMAGE (ubuntu-24.04),
HCLOUD_SIM_DEADLINE (seconds, default 50). Prints one line per check and exits 1 on the first
failure (2 on bad settings). Talks to loopback only.
"""
import ipaddress
import os
import signal
import sys
import time
import uuid
from urllib.parse import urlparse

import requests
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.ssh_keys import SSHKey

URL = os.environ.get("HCLOUD_SIM_URL", "").rstrip("/")
TOKEN = os.environ.get("HCLOUD_TOKEN", "")
TYPE1 = os.environ.get("HCLOUD_SIM_TYPE", "cx22")
TYPE2 = os.environ.get("HCLOUD_SIM_TYPE2", "cx32")
LOCATION = os.environ.get("HCLOUD_SIM_LOCATION", "fsn1")
IMAGE = os.environ.get("HCLOUD_SIM_IMAGE", "ubuntu-24.04")
KEY = os.environ.get("HCLOUD_SIM_SSH_KEY", "1")
DEADLINE = int(os.environ.get("HCLOUD_SIM_DEADLINE", "50"))
RUN = "hc" + uuid.uuid4().hex[:8]
created = []  # server ids to clean up


def loopback(url):
    host = urlparse(url).hostname or ""
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
    except APIException as e:
        fail(name, f"APIException code={e.code!r} message={e.message!r} details={e.details!r}")
    except Exception as e:  # noqa: BLE001 - any client-side parse error is a finding
        fail(name, f"{type(e).__name__}: {e}")
    print(f"ok   {name}" + (f" ({detail})" if detail else ""), flush=True)
    return detail


def expect_api_error(fn, code):
    try:
        fn()
    except APIException as e:
        assert isinstance(e.code, str), (
            f"not a Hetzner error body: HTTP {e.code}, {e.details!r}")
        assert e.code == code, f"code {e.code!r} (wanted {code!r}): {e.message}"
        return f"{e.code}: {e.message}"
    raise AssertionError(f"no error (wanted {code!r})")


def finish(action, command):
    assert action.command == command, f"action command {action.command!r}, wanted {command!r}"
    action.wait_until_finished()  # GET /actions/{id}; bounded by poll_max_retries
    assert action.status == "success", f"action {action.id} ended {action.status!r}"
    assert action.started is not None and action.finished is not None, "no started/finished"
    assert any(r["id"] for r in action.resources), f"resources {action.resources!r}"
    return action


def wait_status(server_id, status, within=20.0):
    deadline = time.monotonic() + within
    while True:
        server = client.servers.get_by_id(server_id)
        if server.status == status or time.monotonic() > deadline:
            assert server.status == status, f"status {server.status!r}, wanted {status!r}"
            return server
        time.sleep(0.1)


def cleanup():
    for sid in created:
        try:
            client.servers.get_by_id(sid).delete()
        except Exception:  # noqa: BLE001 - best effort
            pass


def raw(method, path, body=None, content_type="application/json"):
    """A request the client would never send, with the token."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.request(method, f"{URL}{path}", data=body, headers=headers, timeout=10)


def error_of(response, status):
    assert response.status_code == status, (
        f"HTTP {response.status_code} (wanted {status}): {response.text[:160]!r}")
    try:
        error = response.json()["error"]
    except Exception:  # noqa: BLE001
        raise AssertionError(f"not a Hetzner error body: {response.text[:160]!r}") from None
    assert {"code", "message", "details"} <= set(error), f"error shape {error!r}"
    return error


if not URL or not TOKEN:
    print("set HCLOUD_SIM_URL (e.g. http://127.0.0.1:3199/v1) and HCLOUD_TOKEN", file=sys.stderr)
    sys.exit(2)
if not loopback(URL):
    print(f"refusing {URL}: this script only talks to a simulator on loopback", file=sys.stderr)
    sys.exit(2)
signal.signal(signal.SIGALRM, lambda *_: fail("overall", f"timed out after {DEADLINE} s"))
signal.alarm(DEADLINE)
client = Client(token=TOKEN, api_endpoint=URL, timeout=10, poll_interval=0.1,
                poll_max_retries=200, application_name="nest-sim-test")
labels = {"suite": RUN}
state = {}


def create(role, extra_labels=None, running=True, **extra):
    resp = client.servers.create(
        name=f"{RUN}-{role}", server_type=ServerType(name=TYPE1), image=Image(name=IMAGE),
        location=Location(name=LOCATION), labels={**labels, "role": role, **(extra_labels or {})},
        **extra)
    s = resp.server
    created.append(s.id)
    assert isinstance(s.id, int) and s.name == f"{RUN}-{role}", f"server {s.id!r} {s.name!r}"
    assert s.status in ("initializing", "starting", "running", "off"), f"status {s.status!r}"
    assert s.public_net is not None and s.public_net.ipv4 is not None, "no public_net.ipv4"
    assert s.public_net.ipv4.blocked is False, "public_net.ipv4.blocked"
    assert s.location.name == LOCATION, f"location {s.location.name!r}"
    assert s.image.name == IMAGE and s.server_type.name == TYPE1, "image or server type"
    assert isinstance(resp.next_actions, list), "next_actions is not a list"
    finish(resp.action, "create_server")
    commands = [a.command for a in resp.next_actions]
    assert commands == (["start_server"] if running else []), f"next_actions {commands}"
    for a in resp.next_actions:
        finish(a, "start_server")
    state[role] = s.id
    wait_status(s.id, "running" if running else "off")
    password = "set" if resp.root_password else "null"
    return f"id {s.id}, ip {s.public_net.ipv4.ip}, root_password {password}"


def key():
    return SSHKey(id=int(KEY)) if KEY.isdigit() else SSHKey(name=KEY)


def root_passwords():
    # Checked on the creates above: a password only when no SSH key was given.
    a = client.servers.create(
        name=f"{RUN}-pw", server_type=ServerType(name=TYPE1), image=Image(name=IMAGE))
    created.append(a.server.id)
    assert isinstance(a.root_password, str) and a.root_password, "no root_password without keys"
    a.action.wait_until_finished()
    finish(client.servers.get_by_id(a.server.id).delete(), "delete_server")
    created.remove(a.server.id)
    return "a string without ssh_keys"


def get_by_id():
    s = client.servers.get_by_id(state["a"])
    assert s.name == f"{RUN}-a", f"name {s.name!r}"
    assert s.server_type.name == TYPE1, f"server_type {s.server_type.name!r}"
    assert s.labels == {**labels, "role": "a"}, f"labels {s.labels!r}"
    assert s.created is not None, "no created"
    assert s.public_net.ipv6 is not None and s.public_net.ipv6.ip.endswith("::/64"), "ipv6"
    assert s.protection == {"delete": False, "rebuild": False}, f"protection {s.protection!r}"
    ipaddress.ip_address(s.public_net.ipv4.ip)
    return f"{s.status}, {s.public_net.ipv4.ip}, location {s.location.name}"


def get_by_name():
    s = client.servers.get_by_name(f"{RUN}-a")
    assert s is not None and s.id == state["a"], f"got {s and s.id}"
    assert client.servers.get_by_name(f"{RUN}-missing") is None, "found a missing name"


def select(selector, **kw):
    return {s.id for s in client.servers.get_all(label_selector=selector, **kw)}


def by_labels():
    a, b, c = state["a"], state["b"], state["c"]
    cases = [
        (f"suite={RUN}", {a, b, c}),
        (f"suite={RUN},role=a", {a}),
        (f"suite=={RUN},role!=a", {b, c}),
        (f"suite={RUN},role in (a,b)", {a, b}),
        (f"suite={RUN},role notin (a,b)", {c}),
        (f"suite={RUN},tier", {c}),
        (f"suite={RUN},!tier", {a, b}),
    ]
    for selector, wanted in cases:
        got = select(selector)
        assert got == wanted, f"{selector} gave {sorted(got)}, wanted {sorted(wanted)}"
    return f"{len(cases)} selectors"


def by_status():
    off = select(f"suite={RUN}", status=["off"])
    assert off == {state["c"]}, f"status=off gave {sorted(off)}"
    both = select(f"suite={RUN}", status=["off", "running"])
    assert both == {state["a"], state["b"], state["c"]}, f"off+running gave {sorted(both)}"


def pagination():
    first = client.servers.get_list(label_selector=f"suite={RUN}", page=1, per_page=2)
    p = first.meta.pagination
    assert (p.page, p.per_page, p.previous_page, p.next_page, p.last_page, p.total_entries) == (
        1, 2, None, 2, 2, 3), f"page 1 meta {vars(p)}"
    second = client.servers.get_list(label_selector=f"suite={RUN}", page=2, per_page=2)
    ids = [s.id for s in first.servers] + [s.id for s in second.servers]
    assert sorted(ids) == sorted({state["a"], state["b"], state["c"]}), f"pages gave {ids}"
    assert second.meta.pagination.next_page is None, "page 2 has a next page"
    return "2 + 1"


def pricing():
    """GET /pricing through the client's request(): the shape Nest's daily price read needs."""
    found = client.request("GET", "/pricing")["pricing"]
    assert found["currency"] == "EUR", f"currency {found['currency']!r}"
    for key in ("vat_rate", "image", "floating_ip", "floating_ips", "primary_ips", "traffic",
                "server_backup", "volume", "server_types", "load_balancer_types"):
        assert key in found, f"no {key!r} in {sorted(found)!r}"
    types = {t["name"]: t for t in found["server_types"]}
    assert TYPE1 in types and TYPE2 in types, f"types {sorted(types)!r}"
    prices = {p["location"]: p for p in types[TYPE1]["prices"]}
    assert LOCATION in prices, f"no {LOCATION} price for {TYPE1}: {sorted(prices)!r}"
    monthly = prices[LOCATION]["price_monthly"]
    assert float(monthly["gross"]) > float(monthly["net"]) > 0, f"monthly {monthly!r}"
    ipv4 = [p for p in found["primary_ips"] if p["type"] == "ipv4"]
    assert ipv4 and any(p["location"] == LOCATION for p in ipv4[0]["prices"]), "no IPv4 price"
    return f"{len(types)} types; {TYPE1} in {LOCATION}: {monthly['net']} net a month"


def act(method, command, status, *args):
    def run():
        server = client.servers.get_by_id(state["a"])
        finish(getattr(server, method)(*args), command)
        return wait_status(state["a"], status).status
    return run


def change_type():
    server = client.servers.get_by_id(state["a"])
    finish(server.change_type(ServerType(name=TYPE2), upgrade_disk=False), "change_server_type")
    s = wait_status(state["a"], "off")
    assert s.server_type.name == TYPE2, f"server_type {s.server_type.name!r}"
    return TYPE2


def shutdown():
    finish(client.servers.get_by_id(state["b"]).shutdown(), "shutdown_server")
    return wait_status(state["b"], "off").status


def malformed_json():
    error = error_of(raw("POST", "/servers", b'{"name": '), 400)
    assert error["code"] == "json_error", f"code {error['code']!r}"
    return error["code"]


def invalid_input():
    wrong = raw("POST", "/servers", b'{"name": 5, "server_type": "cx22", "image": "ubuntu-24.04"}')
    error = error_of(wrong, 400)
    assert error["code"] == "invalid_input", f"code {error['code']!r}"
    fields = {f["name"]: f["messages"] for f in error["details"]["fields"]}
    assert list(fields) == ["name"] and fields["name"], f"fields {fields!r}"
    missing = error_of(raw("POST", "/servers", b'{"server_type": "cx22"}'), 400)
    names = sorted(f["name"] for f in missing["details"]["fields"])
    assert names == ["image", "name"], f"missing fields {names}"
    return f"{error['message']}; {missing['message']}"


def paths_and_methods():
    unknown = error_of(raw("GET", "/no-such-thing", content_type=None), 404)
    assert unknown["code"] == "not_found", f"unknown path: {unknown['code']!r}"
    wrong = error_of(raw("PATCH", "/servers", b"{}"), 405)
    assert wrong["code"] == "method_not_allowed", f"wrong method: {wrong['code']!r}"
    word = raw("GET", "/servers/abc", content_type=None)
    code = error_of(word, word.status_code)["code"]
    assert word.status_code in (400, 404) and code in ("invalid_input", "not_found"), code
    return f"404, 405, {word.status_code} {code}"


def empty_action_body():
    r = raw("POST", f"/servers/{state['c']}/actions/poweron", b"")
    assert r.status_code == 201, f"HTTP {r.status_code}: {r.text[:160]!r}"
    action = client.actions.get_by_id(r.json()["action"]["id"])
    finish(action, "start_server")
    return wait_status(state["c"], "running").status


def delete():
    for role in ("a", "b", "c"):
        finish(client.servers.get_by_id(state[role]).delete(), "delete_server")
    for role in ("a", "b", "c"):
        expect_api_error(lambda: client.servers.get_by_id(state[role]), "not_found")
        created.remove(state[role])


check("create without ssh_keys", lambda: create("a"))
check("create with ssh_keys", lambda: create("b", ssh_keys=[key()]))
check("create with start_after_create=False",
      lambda: create("c", {"tier": "gold"}, running=False, ssh_keys=[], start_after_create=False))
check("root_password", root_passwords)
check("get_by_id", get_by_id)
check("get_by_name", get_by_name)
check("get_all(label_selector)", by_labels)
check("get_all(status)", by_status)
check("get_list(page, per_page)", pagination)
check("request(GET /pricing)", pricing)
check("power_off", act("power_off", "stop_server", "off"))
check("change_type", change_type)
check("power_on", act("power_on", "start_server", "running"))
check("reboot", act("reboot", "reboot_server", "running"))
check("reset", act("reset", "reset_server", "running"))
check("shutdown", shutdown)
check("not_found", lambda: expect_api_error(lambda: client.servers.get_by_id(987654321), "not_found"))
check("uniqueness_error", lambda: expect_api_error(lambda: client.servers.create(
    name=f"{RUN}-a", server_type=ServerType(name=TYPE1), image=Image(name=IMAGE),
    location=Location(name=LOCATION)), "uniqueness_error"))
check("json_error", malformed_json)
check("invalid_input", invalid_input)
check("unknown path, wrong method, non-numeric id", paths_and_methods)
check("empty body on an action", empty_action_body)
check("delete", delete)
print("all checks passed", flush=True)
