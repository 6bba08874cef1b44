"""The signing keys of the issuing authorities a hub signs for, loaded once each and kept."""

from __future__ import annotations

import threading
from pathlib import Path

from hub.errors import ConfigurationError, KeyMaterialError
from hub.signing.keys import PemKeyProvider
from hub.signing.signer import Signer


class Keyring:
    """Signers by issuing country, read from ``folder/<CC>.key`` and ``<CC>.pem`` on first use (thread-safe)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._signers: dict[str, Signer] = {}
        self._lock = threading.Lock()

    def countries(self) -> frozenset[str]:
        """The countries with a key and a certificate in the folder."""
        found = self.folder.glob("*.pem") if self.folder.is_dir() else ()
        return frozenset(p.stem for p in found if len(p.stem) == 2 and p.stem.isupper() and p.with_suffix(".key").is_file())

    def signer_for(self, country: str) -> Signer:
        """The signer of the issuing authority of ``country``; :class:`ConfigurationError` when it has no key."""
        with self._lock:
            if country not in self._signers:
                try:
                    self._signers[country] = Signer(PemKeyProvider(self.folder / f"{country}.key", self.folder / f"{country}.pem"))
                except KeyMaterialError as exc:
                    raise ConfigurationError(f"no signing key for the issuing authority of {country} in {self.folder}: {exc}") from exc
            return self._signers[country]
