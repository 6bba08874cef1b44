"""Where the real artefacts of the standards live (``../shared/standards``, or ``HUB_STANDARDS_DIR``).

The hub never ships copies of them; tests read them from here to prove interoperability.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def standards_dir() -> Path:
    """The folder holding the real standards artefacts; it may not exist (callers report the path they looked at)."""
    configured = os.environ.get("HUB_STANDARDS_DIR")
    if configured:
        return Path(configured)
    return PROJECT_ROOT.parent / "shared" / "standards"
