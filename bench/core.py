"""Core benchmark: documents per second for render, validate, sign, verify and parse, beside a raw baseline.

The document is a realistic phytosanitary certificate with 50 trade line items (the worked example, its line item
repeated). The baseline, measured in the same run on the same document and key: raw lxml parse + XSD validation,
and signxml sign / verify used directly. Absolute figures vary with the machine; the ratios are what to compare.

    python bench/core.py [--seconds 2] [--lines 50] [--json] [--gc-freeze]

``--gc-freeze`` freezes the objects alive after set-up out of the garbage collector's reach (``gc.freeze()``, as
``hub serve`` does after start-up); without it the collector runs as in any fresh process.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner, XMLVerifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.mapping.sps_certificate import parse_certificate, record_from_data, render_certificate, to_xml  # noqa: E402
from hub.signing import PemKeyProvider, Signer, TrustStore, Verifier, init_dev_pki  # noqa: E402
from hub.errors import InputError  # noqa: E402
from hub.families import round_trip  # noqa: E402
from hub.standards import PROJECT_ROOT, standards_dir  # noqa: E402
from hub.validation.schemas import load_schema  # noqa: E402
from hub.validation.validator import validate_certificate  # noqa: E402
from hub.xmlsafe import parse_xml  # noqa: E402

EXAMPLE = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.record.json"


def certificate_record(lines: int):
    """The worked example with ``lines`` trade line items."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    template = data["consignment"]["items"][0]["line_items"][0]
    data["consignment"]["items"][0]["line_items"] = [{**copy.deepcopy(template), "sequence_number": i + 1} for i in range(lines)]
    return record_from_data(data)


def round_trip_fidelity() -> dict[str, float]:
    """Share of each real document's leaves kept by parse → record → render, for every certificate or permit in
    the standards samples (whatever its family and wrapper)."""
    shares = {}
    folder = standards_dir() / "samples"
    for path in sorted(folder.rglob("*.xml")) if folder.is_dir() else ():
        try:
            result = round_trip(parse_xml(path.read_bytes(), source=path.name), source=path.name)
        except InputError:
            continue  # a message that holds no certificate or permit (an AS4 signal, a CSW-CERTEX request)
        shares[str(path.relative_to(folder))] = result.fidelity.share
    return shares


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second, run for about ``seconds`` after one warm-up call."""
    operation()
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        operation()
        count += 1
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--lines", type=int, default=50, help="trade line items in the certificate")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after set-up, as hub serve does")
    parser.add_argument("--scenario", default="figures,round-trip", help="comma-separated: figures (the operations and their targets), round-trip (the real samples read and written back)")
    args = parser.parse_args()
    chosen = {name.strip() for name in args.scenario.split(",") if name.strip()}
    if not chosen or chosen - {"figures", "round-trip"}:
        parser.error("--scenario takes figures and/or round-trip")
    if "figures" not in chosen:
        shares = round_trip_fidelity()
        print(json.dumps({"round_trip_kept_share": shares}, indent=2) if args.json else "\n".join(f"round trip kept {share:>7.1%}  {sample}" for sample, share in shares.items()))
        return

    record = certificate_record(args.lines)
    document = to_xml(render_certificate(record, "ephyto").root)
    pki = init_dev_pki(Path(tempfile.mkdtemp(prefix="hub-bench-")), authorities=("FR",))
    keys = PemKeyProvider(pki.directory / "signing" / "FR.key", pki.directory / "signing" / "FR.pem")
    signer, verifier = Signer(keys), Verifier(TrustStore.from_paths(ca_bundle=pki.directory / "ca.pem"))
    signed = signer.sign(document)

    # The baseline gets the same advantage as the hub: its key parsed once, not on every signature.
    key_pem = serialization.load_pem_private_key((pki.directory / "signing" / "FR.key").read_bytes(), password=None)
    cert_pem = (pki.directory / "signing" / "FR.pem").read_bytes()
    schema = load_schema("SPSCertificate")
    raw_signer = XMLSigner(method=SignatureConstructionMethod.enveloped, c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    raw_signed = etree.tostring(raw_signer.sign(etree.fromstring(document), key=key_pem, cert=cert_pem))

    def raw_validate() -> None:
        schema.assertValid(etree.fromstring(document))

    if args.gc_freeze:
        gc.collect()
        gc.freeze()

    figures = {
        "hub": {
            "render": rate(lambda: to_xml(render_certificate(record, "ephyto").root), args.seconds),
            "validate": rate(lambda: validate_certificate(document), args.seconds),
            "sign": rate(lambda: signer.sign(document), args.seconds),
            "verify": rate(lambda: verifier.verify(signed), args.seconds),
            "parse": rate(lambda: parse_certificate(document), args.seconds),
        },
        "baseline": {
            "validate": rate(raw_validate, args.seconds),
            "sign": rate(lambda: raw_signer.sign(etree.fromstring(document), key=key_pem, cert=cert_pem), args.seconds),
            "verify": rate(lambda: XMLVerifier().verify(raw_signed, ca_pem_file=None, x509_cert=cert_pem), args.seconds),
        },
    }
    hub, base = figures["hub"], figures["baseline"]
    hub_path = 1 / (1 / hub["sign"] + 1 / hub["validate"])
    base_path = 1 / (1 / base["sign"] + 1 / base["validate"])
    figures["ratios"] = {
        "sign+validate path, hub time / baseline time": base_path / hub_path,
        "validate, hub time / baseline time": base["validate"] / hub["validate"],
        "sign, hub time / baseline time": base["sign"] / hub["sign"],
        "verify, hub time / baseline time": base["verify"] / hub["verify"],
        "render faster than sign (render/sign rate)": hub["render"] / hub["sign"],
        "parse faster than sign (parse/sign rate)": hub["parse"] / hub["sign"],
    }
    figures["targets"] = {  # issue 14: a document costs what its cryptography costs
        "sign+validate path ≤ 1.3× the baseline": figures["ratios"]["sign+validate path, hub time / baseline time"] <= 1.3,
        "render faster than sign": hub["render"] > hub["sign"],
        "parse faster than sign": hub["parse"] > hub["sign"],
    }
    figures["gc_frozen"] = args.gc_freeze
    figures["round_trip_kept_share"] = round_trip_fidelity() if "round-trip" in chosen else {}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    frozen = "; gc frozen after set-up (--gc-freeze)" if args.gc_freeze else ""
    print(f"certificate: {args.lines} line items, {len(document)} bytes; {args.seconds:.1f} s per figure{frozen}")
    print(f"{'operation':<12}{'hub docs/s':>12}{'baseline docs/s':>18}")
    for name in ("render", "validate", "sign", "verify", "parse"):
        baseline = f"{base[name]:>18.1f}" if name in base else f"{'':>18}"
        print(f"{name:<12}{hub[name]:>12.1f}{baseline}")
    print(f"{'sign+valid.':<12}{hub_path:>12.1f}{base_path:>18.1f}")
    for label, value in figures["ratios"].items():
        print(f"{label:<48}{value:>8.2f}")
    for target, met in figures["targets"].items():
        print(f"target {target:<42}{'met' if met else 'NOT met':>12}")
    for sample, share in figures["round_trip_kept_share"].items():
        print(f"round trip kept {share:>7.1%}  {sample}")


if __name__ == "__main__":
    main()
