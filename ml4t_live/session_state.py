"""Whether a session folder holds a finished run: what ``replay`` warns about before it re-drives one.

A run writes ``summary.json`` last (also when it fails, with ``failed: true``). A folder without
it was killed (``kill -9``, a crash, a power cut): its bars reach the folder at least every
minute (``SessionWriter`` spills), so up to the last minute is missing and the last bar may lack
some assets. A venue run's killed folder is completed from its journal by the next run.
"""

from __future__ import annotations

import json
from pathlib import Path


def unfinished_reason(folder: Path) -> str | None:
    """Why ``folder`` is not a finished run, or None when it is."""
    path = folder / "summary.json"
    if not path.is_file():
        return ("it did not finish (no summary.json: the process was killed or crashed), so the "
                "bars of its last minute may be missing")  # fmt: skip
    try:
        summary = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return f"its {path.name} is unreadable"
    if isinstance(summary, dict) and summary.get("failed"):
        return f"it failed after {summary.get('bars', '?')} bars ({summary.get('error', 'no reason recorded')})"
    return None
