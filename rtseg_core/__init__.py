"""Pieces every package of the suite shares: errors, atomic files, records, devices."""

from rtseg_core._candidate import CandidateRecord
from rtseg_core._device import resolve_device
from rtseg_core._errors import (
    CompressionError,
    ConfigError,
    DataError,
    OutputError,
    ProfilingError,
    RemoteProfilingError,
    SearchError,
    SuiteError,
)
from rtseg_core._io import (
    atomic_save_torch,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
)
from rtseg_core._records import Record

__all__ = [
    "CandidateRecord",
    "CompressionError",
    "ConfigError",
    "DataError",
    "OutputError",
    "ProfilingError",
    "Record",
    "RemoteProfilingError",
    "SearchError",
    "SuiteError",
    "atomic_save_torch",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "read_json",
    "resolve_device",
]
