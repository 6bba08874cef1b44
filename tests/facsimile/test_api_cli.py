"""``GET /v1/documents/{id}/pdf`` and ``hub facsimile ID``: the signed facsimile of a stored document, seen by whom
sees the document (another tenant: 404, as for a document that does not exist), on both engines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hub.signing.verification import SECRET_FILE, load_secret, verification_code
from tests.facsimile.pdf import signature_status, text_of
from tests.support.broker import example_record, permit_record


def submitted(api, record: dict) -> str:
    answer = api.post("/v1/documents", json=record)
    assert answer.status_code in (200, 202), answer.text
    return answer.json()["id"]


def test_the_api_answers_the_signed_facsimile_of_a_certificate(api, broker, pki, tmp_path):
    document_id = submitted(api, example_record())
    answer = api.get(f"/v1/documents/{document_id}/pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert 'filename="FR-2026-PC-000123.pdf"' in answer.headers["content-disposition"]
    assert signature_status(answer.content, pki.ca_cert).bottom_line
    code = verification_code(load_secret(pki.directory / SECRET_FILE), issuing_country="FR", number="FR-2026-PC-000123")
    text = text_of(answer.content, tmp_path)
    assert code in text and f"{broker.settings.public_url}/verify?number=FR-2026-PC-000123&code={code}" in text
    assert "Name and address of exporter" in text and "Nom et adresse de l'exportateur" in text


def test_another_tenant_gets_404_as_for_no_document(api):
    document_id = submitted(api, example_record())
    for name in ("NL", "EC"):
        refused = api.get(f"/v1/documents/{document_id}/pdf", headers=api.headers_of(name))
        unknown = api.get("/v1/documents/00000000-0000-0000-0000-000000000000/pdf", headers=api.headers_of(name))
        assert refused.status_code == unknown.status_code == 404
        assert refused.json()["message"].replace(document_id, "X") == unknown.json()["message"].replace("00000000-0000-0000-0000-000000000000", "X")


def test_languages_can_be_chosen_and_an_unknown_one_is_refused(api, tmp_path):
    document_id = submitted(api, example_record())
    spanish = api.get(f"/v1/documents/{document_id}/pdf", params=[("lang", "en"), ("lang", "es")])
    assert spanish.status_code == 200
    text = text_of(spanish.content, tmp_path)
    assert "Nombre y dirección del exportador" in text and "Nom et adresse de l'exportateur" not in text
    refused = api.get(f"/v1/documents/{document_id}/pdf", params={"lang": "de"})
    assert refused.status_code == 422 and "de" in refused.json()["message"] and refused.json()["where"] == "lang"


def test_the_api_answers_the_facsimile_of_a_cites_permit(permit_api, pki, tmp_path):
    document_id = submitted(permit_api, permit_record())
    answer = permit_api.get(f"/v1/documents/{document_id}/pdf")
    assert answer.status_code == 200, answer.text
    text = text_of(answer.content, tmp_path)
    assert "FR2607512345-R" in text and "Special conditions" in text and "Conditions particulières" in text
    assert signature_status(answer.content, pki.ca_cert).bottom_line


def test_a_document_from_an_authority_whose_key_the_hub_lacks_is_refused_clearly(api, broker):
    from tests.support.api import add_document

    with broker.database.transaction() as session:
        document = add_document(session, tenant="FR")
        document.issuing_country = "BR"  # received from abroad: Brazil's key is not the hub's
        document_id = document.id
    answer = api.get(f"/v1/documents/{document_id}/pdf")
    assert answer.status_code == 422 and "BR" in answer.json()["message"] and answer.json()["where"] == "id"


def hub(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, timeout=120, env={**os.environ, **env})


@pytest.mark.slow
def test_the_command_writes_the_same_signed_facsimile(api, broker, pki, tmp_path, database_url):
    document_id = submitted(api, example_record())
    env = {"HUB_DATABASE_URL": database_url, "HUB_CERTS_DIR": str(pki.directory), "HUB_PUBLIC_URL": "https://hub.example.org"}
    target = tmp_path / "printed.pdf"
    written = hub("facsimile", document_id, "--output", str(target), env=env)
    assert written.returncode == 0, written.stderr.decode()
    assert "https://hub.example.org/verify?number=FR-2026-PC-000123" in written.stdout.decode()
    assert signature_status(target.read_bytes(), pki.ca_cert).bottom_line
    assert "https://hub.example.org/verify?number=FR-2026-PC-000123" in text_of(target.read_bytes(), tmp_path)
    piped = hub("facsimile", document_id, "--output", "-", "--lang", "es", env=env)
    assert piped.returncode == 0 and piped.stdout.startswith(b"%PDF")
    missing = hub("facsimile", "no-such-document", env=env)
    assert missing.returncode == 1 and "no document no-such-document" in missing.stderr.decode()
    bad = hub("facsimile", document_id, "--lang", "de", "--output", "-", env=env)
    assert bad.returncode == 2 and "de" in bad.stderr.decode() and not bad.stdout
