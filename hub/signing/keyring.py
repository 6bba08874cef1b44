"""The signing keys of the issuing authorities a hub signs for: loaded on first use, reloaded when their files change.

A key is rotated without a restart (``hub certs rotate``, :func:`hub.signing.pki.rotate_signing_key`): the next
document the running hub signs for that country is signed with the new key. A pair caught half-way through its
replacement (the new key beside the old certificate) is not used: the keyring keeps signing with the pair it had, and
takes the new one as soon as both files belong together.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from hub.errors import ConfigurationError, KeyMaterialError
from hub.signing.keys import PemKeyProvider
from hub.signing.signer import Signer

log = logging.getLogger("hub.signing.keyring")

#: What tells a file changed: its inode, size and modification time (a rotation replaces the file).
_Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]
_NEVER: _Stamp = ((0, 0, 0), (0, 0, 0))


class Keyring:
    """Signers by issuing country, read from ``folder/<CC>.key`` and ``<CC>.pem`` (thread-safe)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._signers: dict[str, tuple[_Stamp, Signer]] = {}
        self._lock = threading.Lock()

    def countries(self) -> frozenset[str]:
        """The countries with a key and a certificate in the folder."""
        found = self.folder.glob("*.pem") if self.folder.is_dir() else ()
        return frozenset(p.stem for p in found if len(p.stem) == 2 and p.stem.isupper() and p.with_suffix(".key").is_file())

    def signer_for(self, country: str) -> Signer:
        """The signer of the issuing authority of ``country`` with its current key; :class:`ConfigurationError`
        when it has none."""
        key, cert = self.folder / f"{country}.key", self.folder / f"{country}.pem"
        with self._lock:
            known = self._signers.get(country)
            stamp = _stamp(key, cert)
            if known is not None and (stamp is None or known[0] == stamp):
                return known[1]
            try:
                provider = PemKeyProvider(key, cert)
                signer = Signer(provider)
            except KeyMaterialError as exc:
                if known is not None:
                    log.warning("the signing key of %s changed but cannot be used yet (%s); signing with the previous one", country, exc)
                    return known[1]
                raise ConfigurationError(f"no signing key for the issuing authority of {country} in {self.folder}: {exc}") from exc
            if known is not None:
                log.info("signing for %s with a new key: certificate %x of %s", country, provider.certificate.serial_number, signer.signer_subject)
            # The stamp read before loading: a change made while loading is seen at the next call.
            self._signers[country] = (stamp or _NEVER, signer)
            return signer


def _stamp(*paths: Path) -> _Stamp | None:
    try:
        stats = [os.stat(p) for p in paths]
    except OSError:
        return None
    return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)  # type: ignore[return-value]
