"""The counterparts seen from the load benchmark: faults queued through each sandbox's own ``/control`` switch, and
what each sandbox says it received (its own record, the evidence for lost and duplicated deliveries).

Faults: each destination's delivery call (DeliverEnvelope, the CHED submission, the point-to-point POST) gets one
fault for every 1/rate messages the benchmark sends there, taken by whichever call comes next (a first try or a
retry). The kinds rotate: a 503, a 5xx SOAP fault (or a 500 where the protocol has no SOAP), a timeout (the
sandbox answers only after the hub's timeout, and then applies the request: what a slow counterpart does), and a
connection dropped half-way through the answer.
"""

from __future__ import annotations

import ssl
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: destination → (sandbox, its control path, the delivery call's target, the fault kinds it plays, in turn).
FAULT_SWITCHES = {
    "ephyto_hub": ("ephyto_hub", "/control", "DeliverEnvelope", ("unavailable", "server_error", "slow", "drop")),
    "traces_nt": ("traces_nt", "/control", "submit", ("unavailable", "soap_fault", "slow", "drop")),
    "customs": ("p2p", "/p2p/customs/control", "deliver", ("unavailable", "server_error", "slow", "drop")),
    "foreign_authority": ("p2p", "/p2p/authority/control", "deliver", ("unavailable", "server_error", "slow", "drop")),
}
#: destination → (sandbox, the path listing what it received, the field naming the certificate).
RECEIVED = {
    "ephyto_hub": ("ephyto_hub", "/received", "NPPOCertificateNumber"),
    "traces_nt": ("traces_nt", "/received", "certificate_number"),
    "customs": ("p2p", "/p2p/customs/received", "certificate_number"),
    "foreign_authority": ("p2p", "/p2p/authority/received", "certificate_number"),
}


@dataclass
class Received:
    """What the counterparts hold: (destination, certificate number) → how many distinct records (applied) and how
    many deliveries they absorbed (a redelivery the counterpart recognised counts here, not as a record)."""

    records: Counter = field(default_factory=Counter)
    deliveries: Counter = field(default_factory=Counter)


class Counterparts:
    """Talks to the sandboxes of one run over their own TLS (the development PKI's FR client certificate)."""

    def __init__(self, urls: dict[str, str], certs: Path, *, fault_rate: float, slow_seconds: float, client: httpx.Client | None = None) -> None:
        self.urls, self.fault_rate, self.slow_seconds = urls, fault_rate, slow_seconds
        self.client = client or httpx.Client(verify=_client_tls(certs), timeout=60)
        self.sent: Counter = Counter()
        self.injected: Counter = Counter()
        self.kinds: Counter = Counter()

    def close(self) -> None:
        self.client.close()

    def sending(self, destination: str) -> None:
        """One more message to ``destination``: queue a fault there when the rate says it is its turn."""
        # Rounded, not floored: a destination that gets 1/(2 × rate) messages gets its first fault.
        before = int(self.sent[destination] * self.fault_rate + 0.5)
        self.sent[destination] += 1
        if int(self.sent[destination] * self.fault_rate + 0.5) > before:
            sandbox, path, target, kinds = FAULT_SWITCHES[destination]
            kind = kinds[self.injected[destination] % len(kinds)]
            control = {"fault": kind, "target": target, **({"seconds": self.slow_seconds} if kind == "slow" else {})}
            answer = self.client.post(self.urls[sandbox] + path, json=control)
            answer.raise_for_status()
            self.injected[destination] += 1
            self.kinds[f"{destination}:{kind}"] += 1

    def faults_left(self) -> dict[str, int]:
        """Faults still queued per destination (injected but not taken by any call)."""
        left = {}
        for destination in self.injected:
            sandbox, path, _target, _kinds = FAULT_SWITCHES[destination]
            faults = self.client.post(self.urls[sandbox] + path, json={}).json()["faults"]
            left[destination] = faults if isinstance(faults, int) else len(faults)
        return left

    def clear_faults(self) -> None:
        for sandbox, path, _target, _kinds in FAULT_SWITCHES.values():
            self.client.post(self.urls[sandbox] + path, json={"fault": "none"}).raise_for_status()

    def received(self) -> Received:
        """Every counterpart's own record of what it received."""
        found = Received()
        for destination, (sandbox, path, number_field) in RECEIVED.items():
            answer = self.client.get(self.urls[sandbox] + path)
            answer.raise_for_status()
            for entry in answer.json()["received"]:
                key = (destination, entry.get(number_field))
                found.records[key] += 1
                found.deliveries[key] += int(entry.get("deliveries") or 1)
        return found


def _client_tls(certs: Path) -> ssl.SSLContext:
    # An SSLContext, not httpx's cert= (which this httpx sends without the client certificate to these servers).
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.load_cert_chain(certs / "tls" / "client-FR.pem", certs / "tls" / "client-FR.key")
    return context


def by_number(received: Received) -> dict[str, dict[str, tuple[int, int]]]:
    """certificate number → destination → (records, deliveries)."""
    table: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for (destination, number), records in received.records.items():
        table[number][destination] = (records, received.deliveries[(destination, number)])
    return table
