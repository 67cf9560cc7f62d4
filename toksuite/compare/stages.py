"""Stages that run once and are reused: each result is stored with a fingerprint of its inputs.

A stage's record (``OUT/stages/ENCODER/STAGE.json``) holds the fingerprint, the settings it was
computed from, its result and when it ran. The fingerprint covers the stage's own settings and the
fingerprints of the stages it builds on, so a changed setting re-runs the stage that reads it and
everything downstream, nothing else: a new probe pooling re-runs only the probes; a new learning
rate re-runs pretraining, probes and samples; a new BPE vocabulary re-runs all of that encoder's
stages. A record is reused only while the files it points to still exist.

Every decision is appended to ``OUT/stages.jsonl`` (one JSON line: time, encoder, stage, action,
seconds), so what a re-run did can be read back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toksuite.io import write_json_atomic
from toksuite.progress import status

STAGES = ("fit", "flops", "pretrain", "probe", "sample")
LOG_FILE = "stages.jsonl"


def fingerprint(*parts: Any) -> str:
    """SHA-256 of the parts as canonical JSON (sorted keys): equal inputs, equal fingerprint."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Outcome:
    """What a stage did in this invocation and what it produced."""

    result: dict[str, Any]
    fingerprint: str
    action: str  # "ran", "resumed" or "reused"
    seconds: float  # of this invocation (0 when reused)
    finished_at: str
    # What later stages read but the report does not show (the flops stage's per-image train
    # lengths, which plan the budgets): kept in the stage's record, handed over in memory.
    kept: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "seconds": round(self.seconds, 3),
            "finished_at": self.finished_at,
            "fingerprint": self.fingerprint,
        }


class StageStore:
    """Records of finished stages under ``OUT/stages`` and the decision log ``OUT/stages.jsonl``."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.root = self.out / "stages"

    def path(self, encoder: str, stage: str, suffix: str = ".json") -> Path:
        return self.root / encoder / f"{stage}{suffix}"

    def load(self, encoder: str, stage: str, suffix: str = ".json") -> dict[str, Any] | None:
        path = self.path(encoder, stage, suffix)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def log(self, encoder: str, stage: str, action: str, seconds: float = 0.0) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "encoder": encoder,
            "stage": stage,
            "action": action,
            "seconds": round(seconds, 3),
        }
        with (self.out / LOG_FILE).open("a") as f:
            f.write(json.dumps(line) + "\n")

    def run(
        self,
        encoder: str,
        stage: str,
        inputs: dict[str, Any],
        compute: Callable[[bool], tuple[dict[str, Any], str] | tuple[dict[str, Any], str, dict]],
        *,
        upstream: tuple[str, ...] = (),
        keeps: tuple[str, ...] = (),
        artefacts: Callable[[dict[str, Any]], bool] = lambda result: True,
        describe: Callable[[dict[str, Any]], str] = lambda result: "",
        can_resume: Callable[[], bool] = lambda: False,
    ) -> Outcome:
        """Reuse the stage's record when its fingerprint matches, else run ``compute``.

        ``compute(resume)`` returns ``(result, action)``, or ``(result, action, kept)`` for a
        stage that ``keeps`` values for later stages (`Outcome.kept`); a record without them is
        not reused. ``resume`` is true when an earlier attempt with the same fingerprint started
        and ``can_resume()`` says its partial output (a checkpoint) is there to continue from.
        """
        fp = fingerprint(stage, inputs, upstream)
        record = self.load(encoder, stage)
        if (
            record
            and record.get("fingerprint") == fp
            and artefacts(record["result"])
            and set(keeps) <= set(record.get("kept", {}))
        ):
            self.log(encoder, stage, "reused")
            self._line(encoder, stage, describe(record["result"]), "reused")
            return Outcome(
                record["result"], fp, "reused", 0.0, record["finished_at"], record.get("kept", {})
            )
        started = self.load(encoder, stage, ".started.json")
        resume = bool(started and started.get("fingerprint") == fp and can_resume())
        self.path(encoder, stage).unlink(missing_ok=True)  # stale: never read it again
        write_json_atomic(self.path(encoder, stage, ".started.json"), {"fingerprint": fp})
        t0 = time.perf_counter()
        rest: list[dict[str, Any]]  # a stage may return values to keep beside its result
        result, action, *rest = compute(resume)
        kept = rest[0] if rest else {}
        seconds = time.perf_counter() - t0
        finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json_atomic(
            self.path(encoder, stage),
            {
                "stage": stage,
                "encoder": encoder,
                "fingerprint": fp,
                "upstream": list(upstream),
                "inputs": inputs,
                "seconds": round(seconds, 3),
                "finished_at": finished,
                "result": result,
                **({"kept": kept} if kept else {}),
            },
        )
        self.log(encoder, stage, action, seconds)
        self._line(encoder, stage, describe(result), action, seconds)
        return Outcome(result, fp, action, seconds, finished, kept)

    def forget(self, encoder: str) -> None:
        """Drop every record of ``encoder`` (used when it is skipped)."""
        shutil.rmtree(self.root / encoder, ignore_errors=True)

    @staticmethod
    def _line(encoder: str, stage: str, what: str, action: str, seconds: float = 0.0) -> None:
        mark = "[green]✓[/]" if action != "reused" else "[dim]↺[/]"
        when = f"{seconds:.1f} s" if action != "reused" else "reused"
        if action == "resumed":
            when = f"resumed, {when}"
        status(f"{mark} {encoder} · {stage}: {what} [dim]({when})[/]")
