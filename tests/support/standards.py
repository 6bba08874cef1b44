"""The real standards artefacts (``../shared/standards``, or ``HUB_STANDARDS_DIR``: see hub/standards.py), read lazily.

Nothing here reads a file when a test module is imported: a missing folder or file fails only the tests that need it,
each naming the path it looked at, and collection never stops on it. Tests read the artefacts through the
``standards`` fixture (tests/conftest.py), :func:`standard_file`, or loaders cached with ``functools.cache``; a
parametrisation over a standards file goes through :func:`params_from_standard_file`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

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


def params_from_standard_file(relative: str, read: Callable[[Path], Iterable[object]]) -> list:
    """Parameters that ``read`` takes from a standards file at collection time. When the file is missing or
    unreadable, one parameter instead (id ``unavailable``) whose test fails naming the path (see
    ``pytest_runtest_call`` in tests/conftest.py): collection itself never fails on it."""
    path = standards_dir() / relative
    if not path.is_file():
        return [_unavailable(missing(path))]
    try:
        return list(read(path))
    except Exception as exc:  # a broken artefact fails the tests that read it, not the collection
        return [_unavailable(f"real standards artefact unreadable: {path}: {exc}")]


def _unavailable(reason: str):
    return pytest.param(None, id="unavailable", marks=pytest.mark.standard_unavailable(reason))
