"""The documents of the load benchmark: a mix of ePhyto certificates, CHEDs and CITES permits, built from the worked
examples with a certificate number of their own, in a fixed, repeatable order.

* ePhyto: the phytosanitary example bound for the United States (an NPPO on the IPPC ePhyto Hub): the routes send
  it to ``ephyto_hub`` and, as a French export, a copy to ``customs``;
* CHED: the CHED-P example: ``traces_nt`` for the border decision, a copy to ``customs``;
* CITES: the re-export certificate, in force today: ``foreign_authority`` (point to point).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPS_EXAMPLES = ROOT / "mappings" / "SPSCertificate" / "17" / "examples"
PERMIT_EXAMPLE = ROOT / "mappings" / "CITESEPermit" / "2" / "examples" / "reexport-FR-python.record.json"

#: family → share of the documents (the brief's mix).
DEFAULT_MIX = {"ephyto": 0.60, "ched": 0.25, "cites": 0.15}
#: family → the destinations config/routes.yaml gives it (checked against the messages the hub made).
DESTINATIONS = {"ephyto": ("ephyto_hub", "customs"), "ched": ("traces_nt", "customs"), "cites": ("foreign_authority",)}


@dataclass(frozen=True)
class LoadDocument:
    """One document to submit: its family, its certificate (or permit) number and the JSON body."""

    family: str
    number: str
    body: bytes


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


class Mix:
    """Builds ``count`` documents whose families follow ``shares``, shuffled with ``seed`` (the same every run)."""

    def __init__(self, shares: dict[str, float] | None = None, *, seed: int = 12) -> None:
        self.shares = shares or DEFAULT_MIX
        self.seed = seed
        phyto = _read(SPS_EXAMPLES / "phyto-FR-apples.record.json")
        phyto["consignment"]["import_country"] = {"id": "US", "name": "United States"}
        permit = _read(PERMIT_EXAMPLE)
        start = datetime.now(timezone.utc) - timedelta(days=1)
        permit["validity"] = {"start": start.isoformat(timespec="seconds"), "end": (start + timedelta(days=150)).isoformat(timespec="seconds")}
        self.templates = {"ephyto": phyto, "ched": _read(SPS_EXAMPLES / "ched-P-FR-cheese.record.json"), "cites": permit}

    def families(self, count: int) -> list[str]:
        """``count`` family names in the mix's proportions (largest remainder), shuffled."""
        exact = {family: share * count for family, share in self.shares.items()}
        counts = {family: int(value) for family, value in exact.items()}
        for family in sorted(exact, key=lambda f: exact[f] - counts[f], reverse=True)[: count - sum(counts.values())]:
            counts[family] += 1
        order = [family for family, n in counts.items() for _ in range(n)]
        random.Random(self.seed).shuffle(order)
        return order

    def documents(self, count: int, *, run: str) -> list[LoadDocument]:
        """The documents of one run; ``run`` (letters and digits) keeps numbers apart between runs on one hub."""
        return [self._document(family, f"{run}{index:06d}") for index, family in enumerate(self.families(count))]

    def _document(self, family: str, serial: str) -> LoadDocument:
        data = copy.deepcopy(self.templates[family])
        if family == "ephyto":
            number = data["certificate_number"] = f"FR-LOAD-{serial}"
        elif family == "ched":
            number = data["certificate_number"] = f"CHEDP.FR.2026.{serial}"
        else:
            number = data["permit_number"] = f"FR26L{serial}-R"
        return LoadDocument(family, number, json.dumps(data).encode())
