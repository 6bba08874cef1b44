"""The ``hub`` command line, as a user runs it: files, pipes, exit codes and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.signing import init_dev_pki
from hub.standards import PROJECT_ROOT
from tests.support.standards import standard_file

EXAMPLE = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    return init_dev_pki(tmp_path_factory.mktemp("pki"), authorities=("FR", "NL")).directory


def hub(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", *args], input=stdin, capture_output=True, cwd=PROJECT_ROOT, timeout=60)


def test_convert_sign_verify_pipeline(certs):
    converted = hub("convert", "--profile", "ephyto", str(EXAMPLE))
    assert converted.returncode == 0, converted.stderr.decode()
    assert b"<rsm:SPSCertificate" in converted.stdout
    signed = hub("sign", "--certs-dir", str(certs), "-", stdin=converted.stdout)
    assert signed.returncode == 0, signed.stderr.decode()
    verified = hub("verify", "--certs-dir", str(certs), "-", stdin=signed.stdout)
    assert verified.returncode == 0
    assert "C=FR" in verified.stdout.decode()
    tampered = hub("verify", "--certs-dir", str(certs), "-", stdin=signed.stdout.replace(b"18500", b"1"))
    assert tampered.returncode == 1
    assert "digest" in tampered.stderr.decode()


def test_verify_refuses_a_signer_outside_the_trusted_ca(certs, tmp_path):
    stranger = init_dev_pki(tmp_path / "stranger", authorities=("FR",)).directory
    signed = hub("sign", "--certs-dir", str(stranger), str(EXAMPLE.with_name("phyto-FR-apples.full.xml")))
    verified = hub("verify", "--certs-dir", str(certs), "-", stdin=signed.stdout)
    assert verified.returncode == 1
    assert "NOT VALID" in verified.stderr.decode()


@pytest.mark.interop
def test_validate_exit_codes_and_json_report(tmp_path):
    sample = standard_file("samples/ephyto/NO-ephyto-SPSCertificate.xml")
    ok = hub("validate", "--format", "json", str(sample))
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["findings"] is not None
    broken = tmp_path / "broken.xml"
    broken.write_text(sample.read_text(encoding="utf-8").replace("<ns1:ID>EC</ns1:ID>", "<ns1:ID>ZZ</ns1:ID>"), encoding="utf-8")
    bad = hub("validate", str(broken))
    assert bad.returncode == 1
    assert "CL-COUNTRY" in bad.stdout.decode() and "ImportSPSCountry" in bad.stdout.decode()


@pytest.mark.interop
def test_parse_prints_the_record_of_a_soap_wrapped_ched():
    result = hub("parse", str(standard_file("samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml")))
    assert result.returncode == 0, result.stderr.decode()
    record = json.loads(result.stdout)
    assert record["kind"] == "ched" and record["ched_type"] == "A"


def test_bad_input_gets_a_clear_error(tmp_path):
    hostile = tmp_path / "hostile.xml"
    hostile.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>')
    result = hub("validate", str(hostile))
    assert result.returncode == 2 and "DTD" in result.stderr.decode()
    record = json.loads(EXAMPLE.read_text())
    record["consignment"]["consignor"]["nickname"] = "x"
    result = hub("convert", "-", stdin=json.dumps(record).encode())
    assert result.returncode == 2
    assert "consignment.consignor.nickname" in result.stderr.decode()


def test_schema_prints_the_json_schema_of_each_kind():
    result = hub("schema", "ched")
    schema = json.loads(result.stdout)
    assert "ched_type" in schema["properties"] and "consignment" in schema["properties"]
    assert hub("schema", "invoice").returncode == 2


def test_fetch_permit_names_an_unreachable_partner_and_fails(tmp_path, pki):
    from hub.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    command = [sys.executable, "-m", "hub", "fetch-permit", "JP-1", "--from", "https://127.0.0.1:9/cites/v2/CitesDataExchange", "--callee", "JP"]
    env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_CERTS_DIR": str(pki.directory)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert result.returncode == 1 and "AdapterNotAvailable" in result.stderr
    # Without key material, it says which file is missing instead of a traceback.
    result = subprocess.run(command, env={**env, "HUB_CERTS_DIR": str(tmp_path / "none")}, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert result.returncode == 2 and "ca.pem" in result.stderr and "Traceback" not in result.stderr


def test_commands_on_a_fresh_database_say_what_to_run_never_a_traceback(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    for command in (["clients", "add", "exporter", "--tenant", "FR"], ["trace", "nothing"], ["connectors"]):
        result = subprocess.run([sys.executable, "-m", "hub", *command], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert "hub db upgrade" in result.stderr and "Traceback" not in result.stderr, (command, result.stderr)
    assert subprocess.run([sys.executable, "-m", "hub", "db", "upgrade"], capture_output=True, cwd=PROJECT_ROOT, timeout=60, env=env).returncode == 0
    added = subprocess.run([sys.executable, "-m", "hub", "clients", "add", "exporter", "--tenant", "fr"], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, env=env)
    assert added.returncode == 0 and added.stdout.startswith("hub_") and "tenant FR" in added.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--tenant", ""], "ISO 3166"),
    (["--tenant", "not a country"], "ISO 3166"),
    (["--tenant", "FR", "--name-taken"], "exists already"),
])
def test_clients_add_refuses_bad_tenants_and_taken_names_clearly(tmp_path, args, says):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "hub", "db", "upgrade"], capture_output=True, cwd=PROJECT_ROOT, timeout=60, env=env, check=True)
    if "--name-taken" in args:
        subprocess.run([sys.executable, "-m", "hub", "clients", "add", "exporter", "--tenant", "FR"], capture_output=True, cwd=PROJECT_ROOT, timeout=60, env=env, check=True)
        args = ["--tenant", "FR"]
    result = subprocess.run([sys.executable, "-m", "hub", "clients", "add", "exporter", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, env=env)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


def test_serve_without_a_pki_says_what_to_run(tmp_path):
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}", "HUB_CERTS_DIR": str(tmp_path / "none")}
    result = subprocess.run([sys.executable, "-m", "hub", "serve", "--port", "9", "--no-sandboxes"], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, env=env)
    assert result.returncode == 2 and "hub certs init" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_a_port_in_use_naming_it(tmp_path, certs):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}", "HUB_CERTS_DIR": str(certs)}
        result = subprocess.run([sys.executable, "-m", "hub", "serve", "--port", str(port), "--no-sandboxes", "--cites-exchange-port", "0"], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, env=env)
    assert result.returncode == 2 and f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.interop
@pytest.mark.parametrize("sample", ["samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml", "samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml", "samples/ephyto/NO-ephyto-SPSCertificate.xml"])
def test_parse_then_convert_is_a_lossless_shell_pipe_for_real_documents(sample):
    from lxml import etree

    from hub import families
    from hub.mapping.fidelity import compare

    original = standard_file(sample).read_bytes()
    parsed = hub("parse", "-", stdin=original)
    assert parsed.returncode == 0, parsed.stderr.decode()
    record = json.loads(parsed.stdout)
    profile = ["--profile", "epix"] if record["kind"].startswith("cites_") else []
    converted = hub("convert", *profile, "-", stdin=parsed.stdout)
    assert converted.returncode in (0, 1) and converted.stdout.startswith(b"<?xml"), converted.stderr.decode()
    root = etree.fromstring(original)
    document = families.for_document(root).parse(root).element
    assert compare(document, etree.fromstring(converted.stdout)).share == 1.0


def test_the_cites_worked_example_goes_through_convert_sign_verify(certs):
    permit = PROJECT_ROOT / "mappings" / "CITESEPermit" / "2" / "examples" / "reexport-FR-python.record.json"
    converted = hub("convert", str(permit))
    assert converted.returncode == 0 and b"CITESEPermit" in converted.stdout, converted.stderr.decode()
    signed = hub("sign", "--certs-dir", str(certs), "-", stdin=converted.stdout)
    assert signed.returncode == 0, signed.stderr.decode()
    verified = hub("verify", "--certs-dir", str(certs), "-", stdin=signed.stdout)
    assert verified.returncode == 0 and b"valid signature" in verified.stdout
    assert hub("validate", "-", stdin=converted.stdout).returncode == 0
    assert json.loads(hub("schema", "cites_export").stdout)["title"] == "CITESPermit"


@pytest.mark.parametrize(("command", "hint"), [("parse", "hub convert"), ("validate", "hub convert"), ("sign", "hub convert")])
def test_a_record_given_where_a_document_is_expected_gets_a_hint(command, hint):
    result = hub(command, str(EXAMPLE))
    assert result.returncode == 2 and hint in result.stderr.decode() and b"Traceback" not in result.stderr


def test_json_nested_thousands_deep_is_bad_input_not_a_traceback():
    result = hub("convert", "-", stdin=b"[" * 5000 + b"]" * 5000)
    assert result.returncode == 2 and b"nests deeper" in result.stderr and b"Traceback" not in result.stderr
