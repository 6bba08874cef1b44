"""``hub demo``: the core path on the worked example, step by step (what ``make run`` shows until the broker exists)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from hub.errors import SignatureError
from hub.mapping.fidelity import compare
from hub.mapping.sps_certificate import parse_certificate, record_from_data, render_certificate, to_xml
from hub.standards import PROJECT_ROOT
from hub.validation.validator import validate_certificate, validate_record

EXAMPLE = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json"


def run_demo(certs_dir: Path, *, example: Path = EXAMPLE) -> int:
    """Convert, validate, sign, verify and parse back the example record; return the exit code."""
    from hub.signing import PemKeyProvider, Signer, TrustStore, Verifier

    def step(title: str) -> float:
        typer.secho(f"\n== {title}", bold=True)
        return time.perf_counter()

    def done(started: float, text: str) -> None:
        typer.echo(f"   {text}  [{(time.perf_counter() - started) * 1000:.1f} ms]")

    started = step(f"1. Record  {example.relative_to(PROJECT_ROOT)}")
    record = record_from_data(json.loads(example.read_text(encoding="utf-8")))
    done(started, f"{record.kind.value} certificate {record.certificate_number.value}, {len(record.line_items())} line item(s)")

    for profile in ("full", "ephyto"):
        started = step(f"2. Convert to SPSCertificate 17, {profile} profile, and validate")
        root, report = validate_record(record, profile=profile)
        done(started, f"{len(to_xml(root))} bytes; {report.summary()}")
        for finding in report.findings:
            typer.echo(f"   {finding.severity.value} {finding.rule} {finding.field or finding.xpath}: {finding.message_en}")
        if not report.valid:
            return 1

    started = step("3. Sign (enveloped XML-DSig, exclusive c14n, FR development key)")
    signer = Signer(PemKeyProvider(certs_dir / "signing" / "FR.key", certs_dir / "signing" / "FR.pem"))
    signed = signer.sign(to_xml(root))
    done(started, f"{len(signed)} bytes signed")

    started = step("4. Verify against the development CA")
    verified = Verifier(TrustStore.from_paths(ca_bundle=certs_dir / "ca.pem")).verify(signed)
    done(started, f"valid, signed by {verified.signer_subject} with {verified.signature_algorithm}")

    started = step("5. Receive: validate and parse what was signed back into a record")
    validated = validate_certificate(verified.signed_root)
    parsed = parse_certificate(verified.signed_root)
    fidelity = compare(verified.signed_root, render_certificate(parsed.record, "ephyto").root)
    done(started, f"{validated.report.summary()}; round trip kept {fidelity.kept}/{fidelity.total} leaves ({fidelity.share:.0%})")

    tampered = signed.replace(b"18500", b"28500")
    try:
        Verifier(TrustStore.from_paths(ca_bundle=certs_dir / "ca.pem")).verify(tampered)
        typer.echo("   tampered copy verified: THIS IS A BUG")
        return 1
    except SignatureError as exc:
        typer.echo(f"   a tampered copy (net weight 18500 → 28500) is refused: {exc}")
    typer.secho("\nDone: converted, validated, signed, verified and parsed back.", fg="green")
    return 0

