"""The facsimile's tests need a Unicode font (fonts-dejavu-core, which `make tools` installs): without one they are
skipped, naming what to install, as the other tests needing a system tool are."""

from __future__ import annotations

import pytest

from hub.errors import ConfigurationError
from hub.facsimile.page import fonts


@pytest.fixture(autouse=True)
def _a_font():
    try:
        fonts()
    except ConfigurationError as exc:
        pytest.skip(str(exc))
