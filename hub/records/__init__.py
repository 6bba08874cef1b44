"""Internal record models: what issuing systems hand the hub and what it makes of documents from abroad.

One module per document family, each mapped by a spec under ``mappings/``: :mod:`hub.records.sps` (SPS certificates,
SPSCertificate 17) and :mod:`hub.records.cites` (CITES permits, CITESEPermit 2); :mod:`hub.records.values` holds the
value types they share, :mod:`hub.records.status` the status models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def field_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a dotted field path with list indexes: ``consignment.items[0].line_items[1]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "(record)"


def compact(data: Any) -> Any:
    """Drop empty lists and None values from dumped record data, recursively (for printing and storage)."""
    if isinstance(data, dict):
        return {k: compact(v) for k, v in data.items() if v is not None and v != []}
    if isinstance(data, list):
        return [compact(v) for v in data]
    return data


def dump_record(record: BaseModel) -> dict[str, Any]:
    """A record as compact JSON-ready data."""
    return compact(record.model_dump(mode="json", exclude_none=True))
