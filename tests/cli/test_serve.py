"""``hub serve`` as a user runs it: one process with the API, the worker and the mutual-TLS sandbox; a record goes
in with curl-like calls and comes out delivered and acknowledged, traced, and streamed to subscribers."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub.signing.pki import init_dev_pki
from hub.standards import PROJECT_ROOT
from tests.support.broker import current_validity
from tests.contract.suite import wait_for
from tests.support.ports import free_ports

HUB = [sys.executable, "-m", "hub"]
EXAMPLE = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json"


@pytest.fixture
def hub_env(tmp_path: Path) -> dict[str, str]:
    pki = init_dev_pki(tmp_path / "certs", authorities=("FR", "US", "JP"), rsa_key_bits=2048)
    sandbox_port, ephyto_port, traces_port, delta_port, window_port, api_port, exchange_port, cites_port = free_ports(8)
    return {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HUB_CERTS_DIR": str(pki.directory),
        "HUB_SANDBOX_URL": f"https://127.0.0.1:{sandbox_port}",
        "SANDBOX_PORT": str(sandbox_port),
        "HUB_EPHYTO_URL": f"https://127.0.0.1:{ephyto_port}",
        "EPHYTO_PORT": str(ephyto_port),
        "HUB_TRACES_URL": f"https://127.0.0.1:{traces_port}",
        "TRACES_PORT": str(traces_port),
        "DELTA_PORT": str(delta_port),
        "HUB_SINGLE_WINDOW_URL": f"https://127.0.0.1:{window_port}",
        "SINGLE_WINDOW_PORT": str(window_port),
        "API_PORT": str(api_port),
        "CITES_EXCHANGE_PORT": str(exchange_port),
        "CITES_SANDBOX_PORT": str(cites_port),
    }


def run(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HUB, *args], env=env, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)


@pytest.mark.slow
def test_a_record_is_delivered_acknowledged_traced_and_streamed(hub_env):
    assert run(hub_env, "db", "upgrade").returncode == 0
    added = run(hub_env, "clients", "add", "exporter", "--tenant", "FR")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    port = int(hub_env["API_PORT"])
    server = subprocess.Popen(
        [*HUB, "serve", "--port", str(port), "--sandbox-port", f"p2p={hub_env['SANDBOX_PORT']}", "--sandbox-port", f"ephyto_hub={hub_env['EPHYTO_PORT']}", "--sandbox-port", f"traces_nt={hub_env['TRACES_PORT']}",
         "--sandbox-port", f"delta={hub_env['DELTA_PORT']}", "--sandbox-port", f"single_window={hub_env['SINGLE_WINDOW_PORT']}",
         "--cites-exchange-port", hub_env["CITES_EXCHANGE_PORT"], "--sandbox-port", f"cites_authority={hub_env['CITES_SANDBOX_PORT']}"],
        env=hub_env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=10)

        def healthy():
            try:
                return api.get("/healthz").status_code == 200
            except httpx.TransportError:
                return server.poll() is not None and pytest.fail(server.stdout.read())

        wait_for(healthy, timeout=30, what="the hub to listen")
        answer = api.post("/v1/documents", content=EXAMPLE.read_bytes(), headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
        document = answer.json()

        def acknowledged():
            messages = api.get("/v1/messages", params={"document_id": document["id"]}).json()["items"]
            return messages if messages and all(m["state"] == "acknowledged" for m in messages) else None

        messages = wait_for(acknowledged, timeout=30, what="both messages to be acknowledged")
        assert sorted(m["destination"] for m in messages) == ["customs", "foreign_authority"]
        detail = api.get(f"/v1/messages/{messages[0]['id']}").json()
        assert [a["kind"] for a in detail["acknowledgements"]] == ["receipt", "acknowledgement"]

        trace = run(hub_env, "trace", messages[0]["id"])
        assert trace.returncode == 0
        assert "receipt.accepted" in trace.stdout and "acknowledgement.acknowledged" in trace.stdout

        stream = api.get("/v1/events", params={"document": document["id"], "once": "true"})
        events = [json.loads(line[5:]) for line in stream.text.splitlines() if line.startswith("data:")]
        assert "document.received" in [e["event"] for e in events]
        assert sum(e["event"] == "acknowledgement.acknowledged" for e in events) == 2
        assert api.get("/metrics").status_code == 403  # the figures span tenants: an operator key is needed

        # A phytosanitary certificate for the United States goes through the IPPC ePhyto Hub sandbox, whose tracking
        # (Delivered once the importing NPPO has it) becomes the acknowledgement.
        to_us = json.loads(EXAMPLE.read_text())
        to_us["certificate_number"] = "FR-2026-PC-000777"
        to_us["consignment"]["import_country"] = {"id": "US", "name": "United States"}
        answer = api.post("/v1/documents", content=json.dumps(to_us), headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
        assert sorted(m["destination"] for m in answer.json()["messages"]) == ["customs", "ephyto_hub"]
        document = answer.json()
        hub_messages = wait_for(acknowledged, timeout=30, what="the ePhyto Hub to report the envelope delivered")
        through_hub = next(m for m in hub_messages if m["destination"] == "ephyto_hub")
        assert api.get(f"/v1/messages/{through_hub['id']}").json()["receipt_id"]  # the hubDeliveryNumber

        # A phytosanitary certificate for Peru goes to its single window: RCB, then the border's steps are followed
        # until the window releases the consignment.
        to_pe = json.loads(EXAMPLE.read_text())
        to_pe["certificate_number"] = "FR-2026-PC-000888"
        to_pe["consignment"]["import_country"] = {"id": "PE", "name": "Peru"}
        answer = api.post("/v1/documents", content=json.dumps(to_pe), headers={"Content-Type": "application/json"})
        assert sorted(m["destination"] for m in answer.json()["messages"]) == ["customs", "single_window"], answer.text
        document = answer.json()
        window = next(m for m in answer.json()["messages"] if m["destination"] == "single_window")

        def tracked():
            events = [e["event"] for e in api.get(f"/v1/messages/{window['id']}/trace").json()["events"]]
            return events if "tracking.documentary_check" in events else None

        wait_for(tracked, timeout=30, what="the single window's tracking events")
        window_tls = ssl.create_default_context(cafile=Path(hub_env["HUB_CERTS_DIR"]) / "ca.pem")
        window_tls.load_cert_chain(Path(hub_env["HUB_CERTS_DIR"]) / "tls" / "client-FR.pem", Path(hub_env["HUB_CERTS_DIR"]) / "tls" / "client-FR.key")
        decided = httpx.post(f"{hub_env['HUB_SINGLE_WINDOW_URL']}/decision", json={"certificate_number": "FR-2026-PC-000888", "event": "released"}, verify=window_tls)
        assert decided.status_code == 201, decided.text
        wait_for(acknowledged, timeout=30, what="the single window's release to acknowledge the message")

        # A CHED goes to TRACES-NT (WS-Security) for the border decision, and to customs.
        ched = (PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "ched-P-FR-cheese.record.json").read_bytes()
        answer = api.post("/v1/documents", content=ched, headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
        assert sorted(m["destination"] for m in answer.json()["messages"]) == ["customs", "traces_nt"]
        document = answer.json()
        ched_messages = wait_for(acknowledged, timeout=30, what="TRACES-NT to decide on the CHED")
        to_traces = next(m for m in ched_messages if m["destination"] == "traces_nt")
        traced = api.get(f"/v1/messages/{to_traces['id']}").json()
        assert traced["receipt_id"].startswith("CHED")
        decision = next(a for a in traced["acknowledgements"] if a["kind"] == "business_response")
        evidence = api.get(f"/v1/payloads/{decision['payload_digest']}").content  # TRACES-NT's signed CHED
        assert b"SPSCertificate" in evidence and b"SignatureValue" in evidence

        # A CITES re-export certificate goes, signed, to the importing country's management authority (point-to-point).
        reexport = json.loads((PROJECT_ROOT / "mappings" / "CITESEPermit" / "2" / "examples" / "reexport-FR-python.record.json").read_text())
        reexport["validity"] = current_validity()
        answer = api.post("/v1/documents", content=json.dumps(reexport), headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
        assert [m["destination"] for m in answer.json()["messages"]] == ["foreign_authority"]
        document = answer.json()
        wait_for(acknowledged, timeout=30, what="the management authority to acknowledge the permit")
        # Japan's management authority fetches it from the hub's exchange (EPIX style, by its client certificate)
        # and confirms the quantity it inspected.
        jp_tls = ssl.create_default_context(cafile=Path(hub_env["HUB_CERTS_DIR"]) / "ca.pem")
        jp_tls.load_cert_chain(Path(hub_env["HUB_CERTS_DIR"]) / "tls" / "client-JP.pem", Path(hub_env["HUB_CERTS_DIR"]) / "tls" / "client-JP.key")
        japan = httpx.Client(base_url=f"https://127.0.0.1:{hub_env['CITES_SANDBOX_PORT']}", verify=jp_tls, timeout=20)
        fetched = japan.post("/control/fetch", json={"number": reexport["permit_number"], "final": True}).json()
        assert fetched["outcome"] == "received" and fetched["signer_country"] == "FR", fetched
        confirmed = japan.post("/control/confirm", json={"number": reexport["permit_number"], "positions": [{"id": "A", "quantity": "12", "unit": "PCS"}]}).json()
        assert confirmed["outcome"] == "confirmed", confirmed

        # DELTA-G clears a declaration against the CHED: the hub reserves, then writes off at release.
        delta = httpx.Client(base_url=f"http://127.0.0.1:{hub_env['DELTA_PORT']}", timeout=10)
        number = json.loads(ched)["certificate_number"]
        lodged = delta.post("/declarations", json={"documents": [{"code": "N853", "number": number, "items": [{"goods_item": 1, "line": 1, "quantity": "2400", "unit": "KGM"}]}]})
        assert lodged.status_code == 201, lodged.text
        assert delta.post(f"/declarations/{lodged.json()['mrn']}/release").json()["status"] == "released"
        standing = api.get(f"/v1/customs/documents/N853/{number}").json()
        assert standing["lifecycle"] == "used" and standing["lines"][0]["written_off"].startswith("2400")
        # …and TRACES-NT's own ledger for that CHED (through CSW-CERTEX, with the customs account) says the same.
        reference = api.get(f"/v1/messages/{to_traces['id']}").json()["receipt_id"]
        traces_ledger = httpx.get(f"{hub_env['HUB_TRACES_URL']}/quantities/{reference}", verify=ssl.create_default_context(cafile=Path(hub_env["HUB_CERTS_DIR"]) / "ca.pem")).json()
        assert traces_ledger["lines"][0]["written_off"].startswith("2400")

        # A certificate the US NPPO sent France through the ePhyto Hub: pulled, verified, stored inbound, handed on
        # to customs, and acknowledged to the Hub (whose tracking then says Delivered to the sender).
        from_us = json.loads(EXAMPLE.read_text())
        from_us["certificate_number"] = "US-2026-PC-004242"
        from_us["consignment"].update(export_country={"id": "US"}, import_country={"id": "FR"})
        record_file = Path(hub_env["HUB_CERTS_DIR"]).parent / "from-us.json"
        record_file.write_text(json.dumps(from_us))
        converted = run(hub_env, "convert", "--profile", "ephyto", str(record_file))
        assert converted.returncode == 0, converted.stderr
        signed = subprocess.run([*HUB, "sign", "--authority", "US", "-"], input=converted.stdout, env=hub_env, capture_output=True, text=True, cwd=PROJECT_ROOT)
        assert signed.returncode == 0, signed.stderr
        certs = Path(hub_env["HUB_CERTS_DIR"])
        us_tls = ssl.create_default_context(cafile=certs / "ca.pem")
        us_tls.load_cert_chain(certs / "tls" / "client-US.pem", certs / "tls" / "client-US.key")
        ephyto = httpx.Client(base_url=hub_env["HUB_EPHYTO_URL"], verify=us_tls)
        queued = ephyto.post("/control/envelopes", json={"From": "US", "To": "FR", "Content": signed.stdout})
        assert queued.status_code == 201, queued.text

        def received():
            items = api.get("/v1/documents", params={"number": "US-2026-PC-004242", "direction": "inbound"}).json()["items"]
            return items if items and all(m["state"] == "acknowledged" for m in items[0]["messages"]) and items[0]["messages"] else None

        [inbound] = wait_for(received, timeout=30, what="the hub to pull the envelope and hand it on to customs")
        assert (inbound["issuing_country"], [m["destination"] for m in inbound["messages"]]) == ("US", ["customs"])
        held = {e["hubDeliveryNumber"]: e for e in ephyto.get("/received").json()["received"]}
        assert held[queued.json()["hubDeliveryNumber"]]["HUBTrackingInfo"] == "Delivered"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, server.stdout.read()
