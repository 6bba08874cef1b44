"""The single-window connector wired to its sandbox: the sandbox's control endpoints and the contract harness, shared
by the connector's tests and its tracking tests."""

from __future__ import annotations

import httpx

from connectors.serving import InProcessTransport
from connectors.single_window import SingleWindowConfig, SingleWindowConnector
from connectors.single_window.sandbox import SERVICE_PATH, TRACKING_PATH
from hub.connector import Connector, ConnectorContext
from tests.contract.suite import ReceivedMessage, wait_for

NAME = "single_window_ec"
HUB_URL = "http://127.0.0.1:8000"
SETTINGS = dict(interaction_code="CFS.ENVIO01", service_id="IOPCFS0001", sender_id="HUBFR", recipient_id="VUCEEC")


class HttpControls:
    """The sandbox's control endpoints, driven over HTTP."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def control(self, **body: object) -> None:
        self.client.post("/control", json=body).raise_for_status()

    def fault(self, kind, *, count=1, retry_after=None, seconds=None) -> None:
        extra = {key: value for key, value in {"retry_after": retry_after, "seconds": seconds}.items() if value is not None}
        self.control(fault=kind, count=count, **extra)

    def acknowledge_with(self, mode, *, reason_code=None, reason_text=None) -> None:
        """The border decides every certificate received from now on: released (with a remark for ``warn``) or
        refused."""
        decide = {"acknowledge": "released", "warn": "released", "reject": "refused"}[mode]
        self.control(decide=decide, reason_code=reason_code, reason_text=reason_text)

    def decide(self, **decision: object) -> dict:
        """``POST /decision``: the event appended."""
        return self.client.post("/decision", json=decision).raise_for_status().json()["event"]

    def received(self) -> list[ReceivedMessage]:
        entries = self.client.get("/received").raise_for_status().json()["received"]
        keys = ("message_id", "certificate_number", "status", "deliveries")
        return [ReceivedMessage(**{key: entry[key] for key in keys}) for entry in entries]

    def reset(self) -> None:
        self.client.delete("/state").raise_for_status()


class SingleWindowHarness:
    """The contract harness for :class:`SingleWindowConnector` against the sandbox, in-process or over mutual TLS."""

    def __init__(self, *, pki, certificates, base: str, controls: HttpControls, app=None, outcome="accepted"):
        self.pki, self.certificates, self.base, self.controls, self.app = pki, certificates, base, controls, app
        self.outcome = outcome
        self.opened: list[Connector] = []

    def connector(self, **settings) -> SingleWindowConnector:
        config = SingleWindowConfig(**{"endpoint": f"{self.base}{SERVICE_PATH}", "receipt_outcome": self.outcome,
                                       "tracking_endpoint": f"{self.base}{TRACKING_PATH}", "recipient_country": "EC",
                                       "tracking_poll_interval": 0, **SETTINGS, **settings})
        transport = InProcessTransport(self.app) if self.app is not None else None  # None: real HTTPS with mTLS
        connector = SingleWindowConnector(NAME, config, transport=transport,
                                          context=ConnectorContext(certs_dir=str(self.pki.directory), public_url=HUB_URL))
        connector.open()
        self.opened.append(connector)
        return connector

    def message(self, **options):
        return self.certificates.message(destination=NAME, **options)

    def acks(self, connector, *, count, timeout=5.0):
        """The acknowledgements polled (tracking steps left out), once ``count`` have come."""
        acks = []

        def enough():
            acks.extend(report for report in polled(connector) if report.kind != "tracking")
            return len(acks) >= count

        wait_for(enough, timeout=timeout, what=f"{count} acknowledgement(s)")
        return acks

    def close(self) -> None:
        for connector in self.opened:
            connector.close()


def polled(connector) -> list:
    """What ``poll_acks`` gives, recorded as the worker records it (so the cursors move on)."""
    reports = connector.poll_acks()
    connector.answers_recorded(reports)
    return reports
