"""AS4 benchmark: what the access point costs per message, beside the raw cryptography the same message needs.

The message: the worked phytosanitary certificate (signed XML, one line item), sent as the hub sends it: gzip, a
WS-Security signature over eb:Messaging, the Body and the part (RSA-2048, SHA-256), AES-128-GCM with the key wrapped
by RSA-OAEP (MGF1-SHA-256), MIME packaging. Scenarios:

* ``send``: compose a user message (``msh.compose_user_message``) beside the baseline: gzip, one RSA signature, one
  RSA-OAEP key wrap and one AES-GCM encryption of the same bytes with ``cryptography`` directly;
* ``receive``: open it (read, decrypt, verify, decompress: ``open_message`` + ``payloads_of``) beside gunzip, one RSA
  verification, one RSA-OAEP unwrap and one AES-GCM decryption;
* ``receipt``: make the signed receipt of a received message and check it as the sender does (``read_answer``).

Each figure is messages per second over ``--seconds``; the ratio to the baseline is what to compare across
machines. ``--scenario`` picks some; ``--json`` prints them as JSON.

    python bench/as4.py [--seconds 2] [--scenario send,receive,receipt] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.as4 import ns  # noqa: E402
from connectors.as4.ebms import MessageInfo, Party, PartyId, UserMessage, new_message_id  # noqa: E402
from connectors.as4.keys import load_key_pair  # noqa: E402
from connectors.as4.msh import Counterpart, Payload, Security, compose_user_message, open_message, payloads_of, read_answer, receipt_for  # noqa: E402
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml  # noqa: E402
from hub.signing import PemKeyProvider, Signer, init_dev_pki  # noqa: E402
from core import EXAMPLE, rate  # noqa: E402

SCENARIOS = ("send", "receive", "receipt")
MAX = 32 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--scenario", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.scenario.split(",") if name.strip()]
    if not chosen or set(chosen) - set(SCENARIOS):
        parser.error(f"--scenario takes {', '.join(SCENARIOS)}")

    pki = init_dev_pki(Path(tempfile.mkdtemp(prefix="hub-bench-as4-")), authorities=("FR", "JP"), rsa_key_bits=2048)
    document = Signer(PemKeyProvider(pki.signing_keys["FR"], pki.signing_certs["FR"])).sign(
        to_xml(render_certificate(record_from_data(json.loads(EXAMPLE.read_text(encoding="utf-8"))), "full").root))
    hub = load_key_pair(pki.access_point_keys["FR"], certificate_path=pki.access_point_certs["FR"])
    japan = load_key_pair(pki.access_point_keys["JP"], certificate_path=pki.access_point_certs["JP"])
    hub_side, japan_side = Security(key_pair=hub), Security(key_pair=japan)
    to_japan, to_hub = Counterpart((japan.certificate,)), Counterpart((hub.certificate,))

    def user_message() -> UserMessage:
        return UserMessage(mpc=None, info=MessageInfo(datetime.now(timezone.utc), new_message_id("hub")),
                           from_party=Party((PartyId("fr-nppo-ap", ns.PARTY_TYPE_UNREGISTERED),), ns.ROLE_INITIATOR),
                           to_party=Party((PartyId("jp-nppo-ap", ns.PARTY_TYPE_UNREGISTERED),), ns.ROLE_RESPONDER),
                           agreement_ref=None, agreement_ref_type=None, agreement_pmode=None, service="urn:bench", service_type=None,
                           action="Certificate", conversation_id=str(uuid.uuid4()))

    def send():
        return compose_user_message(user_message(), [Payload(f"document-{uuid.uuid4()}@hub", document)], security=hub_side, counterpart=to_japan)

    sent = send()
    content_type = sent.content_type

    def receive():
        received = open_message(sent.body, content_type, security=japan_side, counterpart=to_hub, max_size=MAX)
        return received, payloads_of(received, received.messaging.user_messages[0], limit=MAX)

    received, _ = receive()

    def receipt():
        _, body, receipt_type = receipt_for(received, received.messaging.user_messages[0], security=japan_side, host="jp")
        return read_answer(body, receipt_type, sent=sent, counterpart=to_japan, max_size=MAX)

    signing_key, public_key = hub.private_key, japan.certificate.public_key()
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    compressed = gzip.compress(document, mtime=0)
    wrapped = public_key.encrypt(os.urandom(16), oaep)
    nonce, key = os.urandom(12), AESGCM.generate_key(bit_length=128)
    sealed = AESGCM(key).encrypt(nonce, compressed, None)
    signature = signing_key.sign(document[:2048], padding.PKCS1v15(), hashes.SHA256())

    def raw_send():
        data = gzip.compress(document, mtime=0)
        signing_key.sign(document[:2048], padding.PKCS1v15(), hashes.SHA256())
        public_key.encrypt(os.urandom(16), oaep)
        AESGCM(AESGCM.generate_key(bit_length=128)).encrypt(os.urandom(12), data, None)

    def raw_receive():
        japan.private_key.decrypt(wrapped, oaep)
        gzip.decompress(AESGCM(key).decrypt(nonce, sealed, None))
        hub.certificate.public_key().verify(signature, document[:2048], padding.PKCS1v15(), hashes.SHA256())

    def raw_receipt():
        japan.private_key.sign(document[:2048], padding.PKCS1v15(), hashes.SHA256())
        public_key.verify(japan.private_key.sign(document[:1024], padding.PKCS1v15(), hashes.SHA256()), document[:1024],
                          padding.PKCS1v15(), hashes.SHA256())

    pairs = {"send": (send, raw_send), "receive": (receive, raw_receive), "receipt": (receipt, raw_receipt)}
    figures = {}
    for name in chosen:
        hub_rate, raw_rate = rate(pairs[name][0], args.seconds), rate(pairs[name][1], args.seconds)
        figures[name] = {"hub_per_second": round(hub_rate, 1), "baseline_per_second": round(raw_rate, 1),
                         "hub_ms": round(1000 / hub_rate, 2), "times_baseline": round(raw_rate / hub_rate, 2)}
    figures["message_bytes"] = {"certificate": len(document), "as4_message": len(sent.body)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"AS4, one certificate of {len(document)} bytes ({len(sent.body)} bytes on the wire), RSA-2048:")
    for name in chosen:
        figure = figures[name]
        print(f"  {name:<8} {figure['hub_per_second']:>8.1f}/s  ({figure['hub_ms']:.2f} ms)   raw cryptography "
              f"{figure['baseline_per_second']:>8.1f}/s   {figure['times_baseline']:.2f}x the baseline's time")


if __name__ == "__main__":
    main()
