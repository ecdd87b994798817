"""The sweep ledger: `sweep.jsonl`, one JSON object per trial event, appended and fsynced by the one process
that writes the sweep directory. The record of a sweep: resume reads it back and skips what it holds.

    ledger = Ledger(sweep_dir / "sweep.jsonl")
    ledger.append({"trial": "t0003", "index": 3, "status": "completed", "score": 0.12, ...})
    latest = ledger.latest()          # trial id -> its last record (a paused ASHA trial may be promoted later)

A line cut short by a kill mid-write is ignored on reading (the trial it described simply runs again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlcli.errors import RunIOError


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict) -> None:
        line = json.dumps(record, allow_nan=False, default=str) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise RunIOError(f"{self.path}: cannot append to the sweep ledger: {err.strerror or err}") from None

    def records(self) -> list[dict]:
        """Every whole record, in the order written."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if isinstance(record, dict) and "trial" in record:
                out.append(record)
        return out

    def latest(self) -> dict[str, dict]:
        """Each trial's last record."""
        return {r["trial"]: r for r in self.records()}
