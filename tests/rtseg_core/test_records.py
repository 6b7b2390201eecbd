import json
from dataclasses import dataclass

import pandas as pd
import pytest

from rtseg_core import CandidateRecord, ConfigError, Record


@dataclass(frozen=True)
class Point(Record):
    name: str
    value: float
    note: str = ""


def test_round_trip_and_pandas():
    rows = [Point("a", 1.5), Point("b", 2.0, "x")]
    back = [Point.from_dict(json.loads(r.to_json())) for r in rows]
    assert back == rows
    df = pd.DataFrame([r.to_dict() for r in rows])
    assert list(df.columns) == ["schema", "name", "value", "note"]


def test_unknown_fields_and_schema_are_errors():
    with pytest.raises(ConfigError, match="unknown field"):
        Point.from_dict({"name": "a", "value": 1, "extra": 2})
    with pytest.raises(ConfigError, match="schema 7"):
        Point.from_dict({"schema": 7, "name": "a", "value": 1})


def test_candidate_record_round_trip():
    rec = CandidateRecord(
        name="paper", source="reference", dataset="synthetic", split="val", dice=0.9, dice_ps=0.85, dice_fh=0.95,
        delta_aop_deg=3.0, params=1906507, macs=878195696, latency_ms=21.0, fps=47.6, latency_kind="measured",
        target="local", device="cpu", backend="onnxruntime", precision="fp32", threads=1, height=256, width=256,
        config={"shift_size": 5},
    )  # fmt: skip
    assert CandidateRecord.from_dict(json.loads(rec.to_json())) == rec
