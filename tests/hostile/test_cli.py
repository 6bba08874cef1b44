"""Hostile files on the command line (issue 12 #7: ``hub convert`` printed tracebacks): each command reading a record
or a document answers a clear error naming the file (or the field at fault) and a non-zero exit code, never a traceback. In-process (typer's
runner), so the whole table takes a second."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hub.cli import build_app
from tests.hostile import payloads as p

#: Each hostile record, and what its refusal must name (the file, or the field at fault).
HOSTILE_RECORDS = {
    "deep-json": p.deep_json(),
    "deep-objects": p.deep_objects(),
    "malformed-json": b"{not json",
    "nul-in-number": p.record_with_raw("certificate_number", '"FR\\u0000X"'),
    "lone-surrogate": p.record_with_raw("certificate_number", '"FR\\ud800X"'),
    "latin1-bytes": p.record_body(p.record()).replace(b"Pac\\u00edfico", "Pacífico".encode("latin-1")),
    "an-array": b"[1, 2]",
}
HOSTILE_DOCUMENTS = {
    "xxe": p.xxe_file(),
    "billion-laughs": p.billion_laughs(),
    "billion-laughs-utf16": p.in_utf16(p.billion_laughs()),
    "deep-xml": p.deep_xml(),
    "truncated": p.unsigned_xml()[:-40],
    "binary": bytes(range(256)),
}


def run(tmp_path, *args: str, body: bytes, name: str = "input"):
    path = tmp_path / name
    path.write_bytes(body)
    return CliRunner().invoke(build_app(), [*args, str(path)], catch_exceptions=True)


NAMED = {"nul-in-number": "certificate_number", "lone-surrogate": "certificate_number"}


def refused_cleanly(result, path_name: str) -> None:
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code not in (0, None), output[:400]
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{type(result.exception).__name__}: {result.exception}"
    assert "Traceback" not in output, output[:600]
    where = NAMED.get(path_name.rsplit(".", 1)[0], path_name)
    assert where in output, f"the error does not name {where}: {output[:400]}"


@pytest.mark.parametrize("name", sorted(HOSTILE_RECORDS))
def test_hub_convert_refuses_a_hostile_record_naming_the_file(tmp_path, name):
    refused_cleanly(run(tmp_path, "convert", body=HOSTILE_RECORDS[name], name=f"{name}.json"), f"{name}.json")


@pytest.mark.parametrize("command", ["parse", "validate", "verify"])
@pytest.mark.parametrize("name", sorted(HOSTILE_DOCUMENTS))
def test_document_commands_refuse_a_hostile_document_naming_the_file(tmp_path, pki, command, name):
    args = [command, "--certs-dir", str(pki.directory)] if command == "verify" else [command]
    refused_cleanly(run(tmp_path, *args, body=HOSTILE_DOCUMENTS[name], name=f"{name}.xml"), f"{name}.xml")
