"""One-way/Pull with the hub initiating (AS4 profile §2.1; ebMS3 Core §3.2.1): the hub asks the counterpart's access
point for what waits for it on a message partition channel, and answers each message it got with a callback
receipt (or error signal) once stored.

A ``eb:PullRequest`` is a signal signed with our key: the X.509 signature is how the counterpart authorises the pull
for that MPC (AS4 profile §2.1.1). The answer is a user message (decrypted and authenticated like a pushed one) or
the ``EBMS:0006`` EmptyMessagePartitionChannel warning. A message pulled and never receipted (the hub stopped before
storing it) is offered again by the counterpart: reception awareness makes the pull lose nothing.
"""

from __future__ import annotations

import logging

import httpx

from connectors.as4.config import PullConfig
from connectors.as4.ebms import MessageInfo, PullRequest, SignalMessage, new_message_id, utc_now
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.msh import Counterpart, Received, Security, compose_signal, error_signal, open_message
from connectors.as4.outcomes import summary
from connectors.http import status_error, transport_error
from hub.errors import TransientDeliveryError

log = logging.getLogger(__name__)


class Puller:
    """Pulls from one MPC of one counterpart and sends the callback signals answering what was pulled."""

    def __init__(self, name: str, config: PullConfig, *, endpoint: str, client: httpx.Client, security: Security,
                 counterpart: Counterpart, host: str, max_size: int) -> None:
        self.name, self.config, self.endpoint = name, config, endpoint
        self._client, self._security, self._counterpart, self._host, self._max_size = client, security, counterpart, host, max_size

    def pull(self) -> list[tuple[bytes, Received]]:
        """Up to ``max_per_poll`` user messages, each as received (bytes) and opened, until the MPC is empty. A
        message that cannot be opened is answered with its error signal and skipped; a failure of the exchange
        itself ends this round (what was pulled so far is kept)."""
        pulled: list[tuple[bytes, Received]] = []
        for _ in range(self.config.max_per_poll):
            try:
                raw, content_type = self._exchange()
            except TransientDeliveryError as exc:
                log.warning("%s: pulling from %s failed: %s", self.name, self.endpoint, exc)
                break
            try:
                received = open_message(raw, content_type, security=self._security, counterpart=self._counterpart, max_size=self._max_size)
            except As4Error as exc:
                log.warning("%s: a pulled message is refused: %s %s", self.name, exc.code, exc)
                if exc.ref_to_message_id:
                    try:
                        self.send(*error_signal([exc], ref_to_message_id=exc.ref_to_message_id, security=self._security, host=self._host))
                    except TransientDeliveryError as failed:
                        log.warning("%s: the error signal about %s was not sent: %s", self.name, exc.ref_to_message_id, failed)
                continue
            errors = [error for signal in received.messaging.signal_messages for error in signal.errors]
            if not received.messaging.user_messages:
                if any(error.error_code != EbmsError.EMPTY_MPC.code for error in errors):
                    log.warning("%s: the pull request was answered with %s", self.name, summary(errors))
                break  # EBMS:0006: nothing (more) to pull
            pulled.append((raw, received))
        return pulled

    def send(self, body: bytes, content_type: str) -> None:
        """Push a callback signal (a receipt, an error) to the counterpart; raises :class:`TransientDeliveryError`
        when it is not taken (the pulled message is then offered again)."""
        try:
            response = self._client.post(self.endpoint, content=body, headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            raise transport_error(self.name, self.endpoint, exc, timeout=self._client.timeout.read or 30.0, request=body) from None
        if response.status_code >= 300:
            raise status_error(self.name, self.endpoint, response, request=body)

    def _exchange(self) -> tuple[bytes, str | None]:
        request = SignalMessage(MessageInfo(utc_now(), new_message_id(self._host)), pull_request=PullRequest(self.config.mpc))
        body, content_type = compose_signal(request, security=self._security)
        try:
            response = self._client.post(self.endpoint, content=body, headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            raise transport_error(self.name, self.endpoint, exc, timeout=self._client.timeout.read or 30.0, request=body) from None
        if response.status_code >= 300 or not response.content:
            raise status_error(self.name, self.endpoint, response, request=body)
        return response.content, response.headers.get("content-type")

