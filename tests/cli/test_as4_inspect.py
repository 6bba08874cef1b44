"""``hub as4 inspect`` run as a user runs it, on the 30 real AS4 vectors of samples/as4 (issue 15).

Exit codes: 0 the signature verifies (and the parts decrypt with --key; and the signer is trusted with --trust), 1 it
does not, 2 the input (or a key/certificate file) cannot be used — then a JSON error on stderr, never a traceback.
The command runs in-process through typer's CliRunner over ``hub.cli.app``; one test runs ``python -m hub`` for real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from typer.testing import CliRunner

import hub.cli.as4 as as4_cli
from hub.cli import app
from hub.standards import PROJECT_ROOT

AS4 = "samples/as4"

# file -> (exit code without options, kind, MessageId of the first unit, [(PartInfo MimeType, part size)])
VECTORS = {
    "as4net-as4-encrypted-signed-issuerserial.as4.mime": (
        1, "user-message", "b545c3a0-e57f-46aa-862f-381eb4b70097@CLT-SMOREELS.mshome.net",
        [("image/jpeg", 296413), ("application/xml", 192)]),
    "as4net-as4-multihop-message.as4.mime": (0, "error", "1e022294-1809-4c9e-b98d-27ef93be5f13@TESTFX", []),
    "as4net-as4-pullrequest-warning.xml": (1, "error", "b7346c9d-01a6-4dc1-9fa0-b3aff1d18061@UK:APUK01", []),
    "as4net-as4-soap-signed-pullrequest.xml": (
        0, "pull-request", "5be59681-51f1-4889-86d6-8d38e8294436@10.124.29.152", []),
    "as4net-as4_flame_envelope.as4": (1, "user-message", "b495f1e1-ef0f-4da3-a311-0f5ab6ab27a9@mindertestbed.org", []),
    "as4net-c3_minderreceiveagent_request.as4.mime": (
        1, "user-message", "5c40387e-ee08-4626-bf61-ebec68de77a0@mindertestbed.org",
        [("application/xml", 79), ("application/octet-stream", 95)]),
    "as4net-rssbus_message.as4.mime": (1, "user-message", "Bkw-20180112-110916514-LvB0@Bkw", [("application/octet-stream", 858)]),
    "as4net-signed_holodeck_message.as4.mime": (  # SKI: the signer's certificate is not in the message
        1, "user-message", "cdcc838c-96ed-414a-b127-0937f5cd6549@CLT-FGHEYSELS.ad.codit.eu",
        [("image/jpeg", 296385), ("application/xml", 164)]),
    "domibus-bst_X509PKIPathv1_incoming_message.xml": (1, "user-message", "bb56ec56-c2d8-46ce-b749-a12f49c83588@domibus.eu", []),
    "domibus-is_incoming_message.xml": (1, "user-message", "8307d3b0-a40e-4c33-af57-ea4fa17f6ca0@domibus.eu", []),
    "domibus-ski_incoming_message.xml": (1, "user-message", "73a424e9-4b70-484d-8122-1aaedca6ffdf@domibus.eu", []),
    "jentrata-simple-as4-user-message.txt.mime": (1, "user-message", "2011-921@5209999001264.jentrata.org", [(None, 60)]),
    "oasis-UserMessage_No_MPC_P2P_NoWSSecurity.as4receipt.xml": (1, "receipt", "someuniqueid@receiver.example.com", []),
    "oasis-UserMessage_No_MPC_P2P_WSSecurity.as4receipt.xml": (1, "receipt", "someuniqueid@receiver.example.com", []),
    "oasis-UserMessage_No_MPC_P2P_WSSecurity.xml": (1, "user-message", "orders123@buyer.example.com", []),
    "oxalis-eDeliveryAS4-example.xml": (1, "user-message", "8196c8e2-820f-4aec-a1ca-288a4d1d4020@seller.eu", []),
    "phase4-BundledMessage.xml": (1, "bundle", "UUID-2@receiver.example.com", []),
    "phase4-ErrorMessage.xml": (1, "error", "UUID-2@receiver.example.com", []),
    "phase4-ErrorMessageWithFault.xml": (1, "error", "28a699c5-c7ae-4731-b0b8-ebf3b4bc8477", []),
    "phase4-PullRequest.xml": (1, "pull-request", "UUID-2@initiator.example.com", []),
    "phase4-TestReceipt11.xml": (0, "receipt", "ph-as4@8e086db6-b26e-4c15-95c5-973f3bedbd96", []),
    "phase4-TestReceipt12.xml": (0, "receipt", "d36e26c0-5d4d-4950-ad81-dc620681b5f9@phase4", []),
    "phase4-WrongCompression.mime": (1, "user-message", "c42e883b-aab1-47bf-b2f4-4e89ce309591@ph-as4", [("application/xml", 721)]),
    "phase4-dataport1-mustunderstand.as4in": (
        0, "receipt", "18acfd2d-1fb6-44dd-a196-a077132cf999@lppapqa002.dpaorinp.de", []),
    "phase4-dataport1.as4in": (1, "receipt", "18acfd2d-1fb6-44dd-a196-a077132cf999@lppapqa002.dpaorinp.de", []),
    "phase4-dump-raw.as4out.eml": (1, "user-message", "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4", [("application/xml", 2263)]),
    "phase4-governikus.as4in": (0, "receipt", "03528358-a714-49bc-bce8-9bfabb01fa78@vt-peppol-c3", []),
    "phase4-helger.as4in": (0, "receipt", "1384cf77-2de9-4303-a4e7-ca935a20f4fd@phase4", []),
    "phase4-sample_entsog.txt.mime": (
        1, "user-message", "cb114d74-5f5d-47cd-acf1-9cdc017ab669@mindertestbed.org", [("application/xml", 2775)]),
    "phase4-test-2023-03-15.xml": (1, "user-message", "49267c79-d822-45d9-aa91-c57b3ca508db", []),
}

#: SIG-OK in samples/as4/README.md with the certificate the message carries (BinarySecurityToken).
VERIFY_WITH_BST = ["phase4-helger.as4in", "phase4-governikus.as4in", "phase4-dataport1-mustunderstand.as4in",
                   "phase4-TestReceipt12.xml", "as4net-as4-soap-signed-pullrequest.xml", "as4net-as4-multihop-message.as4.mime"]

ENCRYPTED = "as4net-as4-encrypted-signed-issuerserial.as4.mime"
HOLODECK = "as4net-signed_holodeck_message.as4.mime"

#: The JPEG and XML payloads of the two as4net Holodeck messages: gzip size, uncompressed size.
JPEG_GZIP, JPEG_SIZE = 296385, 296454
XML_GZIP, XML_SIZE = 164, 206
#: AES-128-GCM adds a 12-byte IV and a 16-byte tag to each part.
GCM_OVERHEAD = 28


def inspect(*args: str | Path) -> tuple[int, dict | None, str]:
    """Run ``hub as4 inspect ARGS``: (exit code, the JSON summary on stdout or None, stderr). Fails on a crash."""
    result = CliRunner().invoke(app, ["as4", "inspect", *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"hub as4 inspect crashed: {result.exception!r}") from result.exception
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, summary, result.stderr


def unreadable(*args: str | Path) -> str:
    """Run the command, expect exit 2 with nothing on stdout; the ``error`` of the JSON on stderr."""
    code, summary, stderr = inspect(*args)
    assert (code, summary) == (2, None), stderr
    return json.loads(stderr)["error"]


@pytest.fixture(scope="module")
def samples(standards) -> Path:
    return standards / AS4


@pytest.fixture(scope="module")
def keys(samples) -> Path:
    return samples / "keys"


@pytest.fixture(scope="module")
def passwords(keys) -> dict[str, str]:
    """The PKCS#12 passwords as keys/as4net-README.txt publishes them."""
    text = (keys / "as4net-README.txt").read_text(encoding="utf-8")
    found = dict(re.findall(r"^(AccessPoint[AB]\.pfx):\s*(\S+)\s*$", text, flags=re.M))
    assert set(found) == {"AccessPointA.pfx", "AccessPointB.pfx"}, text
    return found


def refs(summary: dict) -> dict[str, tuple[bool, str | None]]:
    """What each ds:Reference points at (eb:Messaging, Body, the cid: URI) -> (ok, reason)."""
    return {ref["what"]: (ref["ok"], ref["reason"]) for ref in summary["signature"]["references"]}


# --- every vector is read ---------------------------------------------------------------------------------------------

def test_the_table_covers_every_vector(samples):
    on_disk = {path.name for path in samples.iterdir() if path.is_file()} - {"README.md", "SHA256SUMS"}
    assert on_disk == set(VECTORS)
    assert len(VECTORS) == 30


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_every_vector_is_read_and_summarised(samples, name):
    expected_code, kind, message_id, parts = VECTORS[name]
    code, summary, stderr = inspect(samples / name)
    assert code == expected_code, (stderr, summary and summary["signature"]["reason"])
    assert summary["kind"] == kind
    assert summary["message_id"] == message_id
    assert summary["soap_version"] in ("1.1", "1.2")
    assert [(part["mime_type"] if "mime_type" in part else None, part["size"]) for part in summary["parts"]] == parts
    assert all(part["content_type"] and part["content_id"] for part in summary["parts"])
    signature = summary["signature"]
    assert signature["valid"] is (code == 0)
    if signature["valid"]:
        assert signature["reason"] is None and signature["references"] and all(r["ok"] for r in signature["references"])
        assert signature["signer"]["subject"]
    else:
        assert signature["reason"]
    assert "trusted" not in signature and "decryption" not in summary


def test_signature_summary_names_method_key_reference_signer(samples):
    code, summary, _ = inspect(samples / "phase4-helger.as4in")
    assert code == 0
    assert summary["ref_to_message_id"] == "3b3775c9-e88d-47f9-be5a-8e045ca2bc07@phase4"
    assert summary["timestamp"] == "2022-03-07T17:36:50.173000+00:00"
    signature = summary["signature"]
    assert signature["method"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert signature["key_reference"] == "BST"
    assert signature["signer"]["subject"].startswith("CN=POP000306,")
    assert "PEPPOL ACCESS POINT TEST CA" in signature["signer"]["issuer"]
    assert refs(summary) == {"eb:Messaging": (True, None), "Body": (True, None)}
    assert summary["receipt"]["non_repudiation_references"] == [
        "#phase4-msg-9cb62f4d-7132-4b52-93cf-79aa82d8c12f", "#id-0895ace8-af3b-410f-85ec-0227b4f97cd9",
        "cid:phase4-att-8f153eee-52ce-4a39-96a6-2a13296991bb@cid"]


# --- what verifies -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", VERIFY_WITH_BST)
def test_sig_ok_vectors_verify_with_the_certificate_they_carry(samples, name):
    code, summary, _ = inspect(samples / name)
    assert code == 0
    signature = summary["signature"]
    assert (signature["present"], signature["valid"], signature["key_reference"]) == (True, True, "BST")
    assert {"eb:Messaging", "Body"} <= set(refs(summary))


def test_the_multihop_error_carries_its_ebms_0004(samples):
    code, summary, _ = inspect(samples / "as4net-as4-multihop-message.as4.mime")
    assert code == 0
    assert [error["code"] for error in summary["errors"]] == ["EBMS:0004"]


def test_ski_holodeck_message_verifies_with_the_signer_certificate_given(samples, keys):
    code, summary, _ = inspect(samples / HOLODECK, "--signer", keys / "as4net-AccessPointB.cer")
    assert code == 0
    signature = summary["signature"]
    assert (signature["valid"], signature["key_reference"]) == (True, "SKI")
    assert signature["signer"]["subject"] == "CN=AccessPointB"
    assert signature["signer"]["serial"] == "52a8aae8dfb86dc9"
    attachments = [ref for ref in signature["references"] if ref["uri"].startswith("cid:")]
    assert [(ref["ok"], ref["reason"]) for ref in attachments] == [(True, None), (True, None)]
    assert [(p["content_type"], p["size"], p["uncompressed_size"]) for p in summary["parts"]] == [
        ("application/gzip", JPEG_GZIP, JPEG_SIZE), ("application/gzip", XML_GZIP, XML_SIZE)]


def test_ski_holodeck_message_without_its_signer_certificate_says_which_key_is_missing(samples, keys):
    code, summary, _ = inspect(samples / HOLODECK)
    assert code == 1
    assert "subject key identifier" in summary["signature"]["reason"]
    # the wrong candidate does not help either
    code, summary, _ = inspect(samples / HOLODECK, "--signer", keys / "as4net-AccessPointA.cer")
    assert code == 1
    assert "subject key identifier" in summary["signature"]["reason"]


def test_a_pem_certificate_works_as_signer(samples, keys):
    code, summary, _ = inspect(samples / HOLODECK, "--signer", keys / "derived/as4net-AccessPointB.pem")
    assert (code, summary["signature"]["valid"]) == (0, True)


# --- sign then encrypt -------------------------------------------------------------------------------------------------

def test_encrypted_message_without_a_key_fails_because_its_attachments_are_encrypted(samples, keys):
    code, summary, _ = inspect(samples / ENCRYPTED, "--signer", keys / "as4net-AccessPointA.cer")
    assert code == 1
    checked = refs(summary)
    assert checked.pop("eb:Messaging") == (True, None) and checked.pop("Body") == (True, None)
    assert len(checked) == 2
    for uri, (ok, reason) in checked.items():
        assert uri.startswith("cid:") and not ok
        assert "encrypted" in reason and "decrypt it first" in reason
    assert "encrypted" in summary["signature"]["reason"]
    assert summary["signature"]["key_reference"] == "IssuerSerial"
    # the ciphertext is shown as such, not as a broken gzip stream
    for part, plain in zip(summary["parts"], (JPEG_GZIP, XML_GZIP)):
        assert part["encrypted"] is True and "problem" not in part
        assert (part["content_type"], part["size"], part["uncompressed_size"]) == (
            "application/octet-stream", plain + GCM_OVERHEAD, None)


def test_encrypted_message_without_key_or_signer_names_the_issuer_serial(samples):
    code, summary, _ = inspect(samples / ENCRYPTED)
    assert code == 1
    assert "CN=AccessPointA" in summary["signature"]["reason"] and "8207205864034169939" in summary["signature"]["reason"]


def test_encrypted_message_decrypts_with_the_receiver_key_then_verifies(samples, keys, passwords):
    code, summary, stderr = inspect(samples / ENCRYPTED, "--key", keys / "as4net-AccessPointB.pfx",
                                    "--password", passwords["AccessPointB.pfx"],
                                    "--signer", keys / "as4net-AccessPointA.cer")
    assert code == 0, stderr
    assert summary["decryption"] == {"status": "decrypted", "key_transport": "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
                                     "parts": 2}
    assert summary["signature"]["valid"] is True
    assert summary["signature"]["signer"]["subject"] == "CN=AccessPointA"
    assert all(ok for ok, _ in refs(summary).values()) and len(refs(summary)) == 4
    assert [(p["mime_type"], p["content_type"], p["size"], p["uncompressed_size"], p.get("decrypted"))
            for p in summary["parts"]] == [("image/jpeg", "application/gzip", JPEG_GZIP, JPEG_SIZE, True),
                                           ("application/xml", "application/gzip", XML_GZIP, XML_SIZE, True)]


def test_encrypted_message_with_a_pem_key_and_certificate(samples, keys, passwords, tmp_path):
    key, _, _ = pkcs12.load_key_and_certificates((keys / "as4net-AccessPointB.pfx").read_bytes(),
                                                 passwords["AccessPointB.pfx"].encode())
    pem = tmp_path / "b.key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    code, summary, stderr = inspect(samples / ENCRYPTED, "--key", pem, "--certificate", keys / "derived/as4net-AccessPointB.pem",
                                    "--signer", keys / "as4net-AccessPointA.cer")
    assert code == 0, stderr
    assert summary["decryption"]["status"] == "decrypted"
    # a certificate that does not hold the key's public key is refused before anything is read
    error = unreadable(samples / ENCRYPTED, "--key", pem, "--certificate", keys / "derived/as4net-AccessPointA.pem")
    assert "does not hold the public key" in error


def test_encrypted_message_with_the_wrong_key_fails_naming_the_mismatch(samples, keys, passwords):
    code, summary, _ = inspect(samples / ENCRYPTED, "--key", keys / "as4net-AccessPointA.pfx",
                               "--password", passwords["AccessPointA.pfx"], "--signer", keys / "as4net-AccessPointA.cer")
    assert code == 1
    decryption = summary["decryption"]
    assert decryption["status"] == "failed"
    assert decryption["reason"].startswith("EBMS:0102")
    assert "CN=AccessPointB" in decryption["reason"] and "not for us" in decryption["reason"]
    assert "CN=AccessPointA" in decryption["reason"]
    assert all(part["encrypted"] is True and "problem" not in part for part in summary["parts"])


def test_a_key_on_an_unencrypted_message_says_so(samples, keys, passwords):
    code, summary, _ = inspect(samples / HOLODECK, "--key", keys / "as4net-AccessPointB.pfx",
                               "--password", passwords["AccessPointB.pfx"], "--signer", keys / "as4net-AccessPointB.cer")
    assert code == 0
    assert summary["decryption"]["status"] == "not encrypted"


# --- negative vectors --------------------------------------------------------------------------------------------------

def test_dataport_rewritten_must_understand_breaks_the_messaging_digest(samples):
    code, summary, _ = inspect(samples / "phase4-dataport1.as4in")
    assert code == 1
    assert refs(summary) == {"eb:Messaging": (False, "digest mismatch"), "Body": (True, None)}
    reason = summary["signature"]["reason"]
    assert "eb:Messaging" in reason and "digest mismatch" in reason
    assert "SignatureValue" not in reason  # SignedInfo itself is intact: only the reference fails


def test_wrong_compression_is_read_and_its_part_names_ebms_0303(samples):
    code, summary, _ = inspect(samples / "phase4-WrongCompression.mime")
    assert code == 1
    assert summary["signature"]["present"] is False
    assert "no wsse:Security" in summary["signature"]["reason"]
    [part] = summary["parts"]
    assert part["content_id"] == "ph-as4-0026b807-e599-40e2-af67-22f2e6fe4ddd"
    assert part["compression_type"] == "application/rar"
    assert part["uncompressed_size"] is None
    assert part["problem"].startswith("EBMS:0303") and "application/rar" in part["problem"]


def test_partinfo_naming_no_part_is_reported(samples):
    code, summary, _ = inspect(samples / "jentrata-simple-as4-user-message.txt.mime")
    assert code == 1
    [part] = summary["parts"]
    assert part["content_id"] == "attachmentPart@jentrata.org" and part["problem"] == "no PartInfo names this part"
    [missing] = summary["missing_parts"]
    assert missing["href"] == "cid:attachment1234@jentrata.org"
    assert missing["problem"].startswith("EBMS:0007")


# --- trust -------------------------------------------------------------------------------------------------------------

def test_trust_in_another_certificate_makes_a_valid_signature_a_no(samples, keys):
    code, summary, _ = inspect(samples / "phase4-helger.as4in", "--trust", keys / "as4net-AccessPointB.cer")
    assert code == 1
    signature = summary["signature"]
    assert signature["valid"] is True and signature["reason"] is None
    assert signature["trusted"] is False
    assert "CN=POP000306" in signature["trust_reason"]


def test_trust_in_the_signer_exits_zero(samples, keys):
    code, summary, _ = inspect(samples / "as4net-as4-soap-signed-pullrequest.xml", "--trust", keys / "as4net-AccessPointA.cer")
    assert code == 0
    assert (summary["signature"]["trusted"], summary["signature"]["trust_reason"]) == (True, None)
    code, summary, _ = inspect(samples / "as4net-as4-soap-signed-pullrequest.xml", "--trust", keys / "as4net-AccessPointB.cer",
                               "--trust", keys / "as4net-AccessPointA.cer")
    assert (code, summary["signature"]["trusted"]) == (0, True)


def test_a_signer_certificate_is_no_trust_anchor(samples, keys):
    # --signer resolves the SKI; only --trust says whom we trust
    code, summary, _ = inspect(samples / HOLODECK, "--signer", keys / "as4net-AccessPointB.cer",
                               "--trust", keys / "as4net-AccessPointA.cer")
    assert code == 1
    assert (summary["signature"]["valid"], summary["signature"]["trusted"]) == (True, False)
    code, summary, _ = inspect(samples / HOLODECK, "--trust", keys / "as4net-AccessPointB.cer")
    assert (code, summary["signature"]["valid"], summary["signature"]["trusted"]) == (0, True, True)


# --- unreadable input --------------------------------------------------------------------------------------------------

def test_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert unreadable(tmp_path / "empty").startswith("EBMS:0007")


def test_random_bytes(tmp_path):
    (tmp_path / "noise").write_bytes(bytes((index * 7919 + 13) % 256 for index in range(4096)))
    assert "neither XML nor MIME" in unreadable(tmp_path / "noise")


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.999])
def test_truncated_mime(samples, tmp_path, fraction):
    data = (samples / HOLODECK).read_bytes()
    (tmp_path / "cut").write_bytes(data[:int(len(data) * fraction)])
    error = unreadable(tmp_path / "cut")
    assert error.startswith("EBMS:0007") and "close delimiter" in error


def test_truncated_envelope(samples, tmp_path):
    data = (samples / "phase4-helger.as4in").read_bytes()
    (tmp_path / "cut").write_bytes(data[:len(data) // 2])
    assert "not well-formed" in unreadable(tmp_path / "cut")


def test_missing_file_and_directory(tmp_path):
    assert "No such file" in unreadable(tmp_path / "absent.as4")
    assert unreadable(tmp_path)


def test_too_large(samples, monkeypatch):
    monkeypatch.setattr(as4_cli, "MAX_MESSAGE_BYTES", 1000)
    assert "larger than 1000 bytes" in unreadable(samples / "phase4-helger.as4in")


def test_unusable_key_and_certificate_files(samples, keys, passwords):
    message = samples / "phase4-helger.as4in"
    assert "domibus-gateway_keystore.jks" in unreadable(message, "--key", keys / "domibus-gateway_keystore.jks",
                                                        "--password", "test123")
    assert "wrong password" in unreadable(message, "--key", keys / "as4net-AccessPointB.pfx", "--password", "nope")
    assert "no password" in unreadable(message, "--key", keys / "as4net-AccessPointB.pfx")
    assert "as4net-README.txt" in unreadable(message, "--trust", keys / "as4net-README.txt")
    assert "as4net-README.txt" in unreadable(message, "--signer", keys / "as4net-README.txt")
    assert "cannot read" in unreadable(message, "--signer", keys / "absent.cer")


def test_the_real_command_exit_codes_and_streams(samples, tmp_path):
    """``python -m hub`` itself: JSON on stdout with 0/1, a JSON error on stderr with 2, never a traceback."""
    def hub(*args):
        return subprocess.run([sys.executable, "-m", "hub", "as4", "inspect", *map(str, args)], capture_output=True,
                              cwd=PROJECT_ROOT, timeout=120)

    ok = hub(samples / "phase4-governikus.as4in")
    assert ok.returncode == 0, ok.stderr.decode()
    assert json.loads(ok.stdout)["message_id"] == "03528358-a714-49bc-bce8-9bfabb01fa78@vt-peppol-c3"
    (tmp_path / "empty").write_bytes(b"")
    broken = hub(tmp_path / "empty")
    assert (broken.returncode, broken.stdout) == (2, b"")
    assert b"Traceback" not in broken.stderr
    assert json.loads(broken.stderr)["error"] == "EBMS:0007 the message is empty"
