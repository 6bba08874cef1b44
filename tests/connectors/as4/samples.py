"""The real AS4 messages of ../shared/standards/samples/as4 as test parameters, one per file its SHA256SUMS lists."""

from __future__ import annotations

import pytest

from tests.support.standards import params_from_standard_file

SAMPLES = "samples/as4"


def _sample_names(path):
    for line in path.read_text().splitlines():
        name = line.split()[-1]
        if not name.startswith("keys/"):
            yield pytest.param(name, id=name)


ALL_SAMPLES = params_from_standard_file(f"{SAMPLES}/SHA256SUMS", _sample_names)
