"""zeep over httpx: the connector's SOAP calls travel on the httpx client it was handed.

zeep's own :class:`zeep.transports.Transport` is built on ``requests``. The hub's connectors are handed an
``httpx.BaseTransport`` (in-process sandboxes, mocks) and map httpx's exception tree to delivery errors, so this
adapter keeps one HTTP stack for every connector: timeouts, TLS refusals and dropped answers surface as the same
httpx exceptions the point-to-point connector already translates. It also keeps the raw bytes of the last exchange
per thread, for the trace, and never fetches a schema from the network.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx
from zeep.transports import Transport


@dataclass
class Exchange:
    """The raw bytes of one SOAP call; ``response`` stays None when nothing came back."""

    request: bytes | None = None
    response: httpx.Response | None = None


class HttpxTransport(Transport):
    """A zeep transport posting with an ``httpx.Client``; WSDL and schemas load from local files only."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        # Not calling Transport.__init__: it would open a requests.Session this transport never uses.
        self.cache = None
        self.load_timeout = self.operation_timeout = client.timeout.read if client is not None else None
        self.logger = logging.getLogger(__name__)
        self.client = client
        self._local = threading.local()

    @property
    def last(self) -> Exchange:
        """The exchange of the last call made by this thread."""
        if not hasattr(self._local, "exchange"):
            self._local.exchange = Exchange()
        return self._local.exchange

    def post(self, address, message, headers):
        if self.client is None:
            raise httpx.UnsupportedProtocol(f"this transport only loads local files, it cannot post to {address}")
        exchange = self._local.exchange = Exchange(request=message if isinstance(message, bytes) else message.encode("utf-8"))
        exchange.response = self.client.post(address, content=exchange.request, headers=headers)
        return exchange.response

    def get(self, address, params, headers):
        return self.client.get(address, params=params, headers=headers)

    def load(self, url):
        if not url:
            raise ValueError("No url given to load")
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            raise ValueError(f"refusing to fetch {url}: the connector's WSDL and schemas are local files")
        path = parsed.path if parsed.scheme == "file" else url
        with open(os.path.expanduser(path), "rb") as handle:
            return handle.read()

    def __del__(self) -> None:
        pass
