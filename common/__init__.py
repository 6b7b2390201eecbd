"""Pieces every package of the suite shares: errors, atomic files, records, devices."""

from common._candidate import CandidateRecord
from common._device import resolve_device
from common._errors import (
    CompressionError,
    ConfigError,
    DataError,
    ProfilingError,
    RemoteProfilingError,
    SearchError,
    SuiteError,
)
from common._io import (
    atomic_save_torch,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
)
from common._records import Record

__all__ = [
    "CandidateRecord",
    "CompressionError",
    "ConfigError",
    "DataError",
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
