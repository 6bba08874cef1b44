"""The real standards artefacts (``../shared/standards``, or ``HUB_STANDARDS_DIR``: see hub/standards.py), read lazily.

Nothing here reads a file when a test module is imported: a missing folder or file fails only the tests that need it,
each naming the path it looked at, and collection never stops on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.standards import standards_dir


def missing(path: Path) -> str:
    """The failure message for a standards artefact that is not there."""
    return f"real standards artefact missing: {path} (set HUB_STANDARDS_DIR)"


def standard_file(relative: str) -> Path:
    """A file under the standards folder, failing the test with its path when it is absent."""
    path = standards_dir() / relative
    if not path.is_file():
        pytest.fail(missing(path))
    return path
