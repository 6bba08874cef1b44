"""Every real document in the standards folder, whatever its family and wrapper, is read into a record and written
back keeping 100% of its leaf values and attributes (what the mapping does not model rides along as extensions)."""

from __future__ import annotations

import pytest

from hub.errors import InputError
from hub.families import round_trip
from hub.xmlsafe import parse_xml
from tests.support.standards import standards_dir


def real_documents():
    """(name, root) of every sample that holds a certificate or permit; messages that hold none (AS4 signals,
    CSW-CERTEX requests) are not documents."""
    folder = standards_dir() / "samples"
    if not folder.is_dir():
        pytest.fail(f"the real samples are missing: {folder} (../shared/standards, or HUB_STANDARDS_DIR)")
    found = []
    for path in sorted(folder.rglob("*.xml")):
        root = parse_xml(path.read_bytes(), source=str(path))
        try:
            round_trip(root, source=path.name)
        except InputError:
            continue
        found.append((str(path.relative_to(folder)), root))
    return found


@pytest.mark.interop
def test_every_real_document_is_written_back_without_losing_a_value():
    documents = real_documents()
    families = {round_trip(root).family for _name, root in documents}
    assert len(documents) >= 4 and families == {"sps", "cites"}, [name for name, _root in documents]
    losses = {}
    for name, root in documents:
        result = round_trip(root, source=name)
        if result.fidelity.share < 1.0 or result.fidelity.added:
            losses[name] = (f"{result.fidelity.kept}/{result.fidelity.total}", result.fidelity.lost[:3], result.fidelity.added[:3])
    assert not losses, losses
