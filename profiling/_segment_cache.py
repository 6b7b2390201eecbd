"""Segments' kernels and MACs kept on disk beside a kernel table, so a new search process starts warm.

:class:`SegmentKernels` decomposes each distinct segment of the family once per process (an ONNX
export, ONNX Runtime's optimisation pass, fvcore); a one-shot search against a 256 px table
exported 1,413 segments on its first run, and the next process paid for them again. This file
keeps what those decompositions give (the kernels in order and the MACs), one JSON line per
segment, appended as each is decomposed: a killed run keeps every line it wrote, and a partial last
line (the kill mid-write) is dropped with a warning. The runnable kernel graphs are not kept (they
hold weights and are only needed to time a kernel the table lacks; such a segment is exported again).

The first line says what the kernels depend on: the opset, the torch, onnx and onnxruntime
versions (the exporter and ORT's optimiser decide the graph) and a digest of our code that builds,
exports and cuts the segments (models/, profiling's export and decomposition). A file written under
anything else is not used: the log says what differs and the file is started again. Lines are data
only (``json``): nothing is executed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from profiling._kernels import Kernel
from rtseg_core import ConfigError

log = logging.getLogger(__name__)

FORMAT = "rtseg-nas segment kernels"
FORMAT_VERSION = 1


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def _code_digest() -> str:
    """SHA-256 of the code a segment's kernels come from: the family (models/), the export and the
    decomposition. Any edit there starts the cache again, so it never serves kernels of older code."""
    here = Path(__file__).resolve().parent
    files = sorted((here.parent / "models").glob("*.py")) + [
        here / name for name in ("_export.py", "_kernels.py", "_segment_kernels.py", "_onnx_input.py")
    ]
    digest = hashlib.sha256()
    for f in files:
        if f.is_file():
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def cache_header(opset: int, seed: int) -> dict[str, Any]:
    """What a cached decomposition depends on (the file's first line)."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "opset": opset,
        "seed": seed,
        "torch": _version("torch"),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "code": _code_digest(),
    }


def segment_cache_path(table_path: str | Path) -> Path:
    """The cache beside a table: ``table256.json`` -> ``table256.segments.jsonl``."""
    p = Path(table_path)
    return p.with_name(f"{p.stem}.segments.jsonl")


def cache_key(key: tuple[Any, ...]) -> str:
    """A segment key as text (its tuple of plain values in JSON; the same key always gives the same text)."""
    try:
        return json.dumps(key, separators=(",", ":"))
    except TypeError as exc:  # a non-JSON value in a key would be a bug in models.forward_segments
        raise ConfigError(f"segment key {key!r} cannot be cached: {exc}") from None


@dataclass(frozen=True)
class CachedSegment:
    kernels: tuple[Kernel, ...]
    macs: int


class SegmentCache:
    """The append-only file at ``path`` for segments decomposed at ``header`` (module docstring)."""

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.header = header
        self.appended = 0

    def load(self) -> dict[str, CachedSegment]:
        """Every cached segment by :func:`cache_key`; empty if the file is absent or from other versions."""
        if not self.path.is_file():
            return {}
        text = self.path.read_text()
        lines, complete = text.split("\n"), text.endswith("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not lines:
            return {}
        try:
            head = json.loads(lines[0])
        except ValueError:
            raise ConfigError(f"{self.path}: line 1 is not a segment cache header; move the file away") from None
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise ConfigError(f"{self.path}: not a segment kernel cache (line 1 has no format {FORMAT!r}); move it")
        stale = {k: (head.get(k), v) for k, v in self.header.items() if head.get(k) != v}
        if stale:
            what = ", ".join(f"{k} {old} (now {new})" for k, (old, new) in stale.items())
            log.warning("%s was written for %s: not used, its segments are decomposed again", self.path, what)
            self._start()
            return {}
        out: dict[str, CachedSegment] = {}
        for i, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
                kernels = tuple(Kernel.from_dict(k) for k in entry["kernels"])
                out[str(entry["key"])] = CachedSegment(kernels, int(entry["macs"]))
            except (ValueError, KeyError, TypeError) as exc:
                if i == len(lines) and not complete:
                    log.warning("%s: line %d is cut short (a run stopped while writing it): dropped", self.path, i)
                    self._rewrite(lines[: i - 1])
                    break
                raise ConfigError(f"{self.path}: line {i} is not a cached segment ({exc}); move the file") from None
        return out

    def append(self, key: str, segment: CachedSegment) -> None:
        """One segment as one line, written by one ``write`` in append mode (two searches may share a table)."""
        if not self.path.is_file():
            try:  # exclusive: a second process starting at the same moment must not replace the first's lines
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(json.dumps(self.header) + "\n")
        line = json.dumps({"key": key, "macs": segment.macs, "kernels": [k.to_dict() for k in segment.kernels]})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        self.appended += 1

    def _start(self) -> None:
        self._rewrite([json.dumps(self.header)])

    def _rewrite(self, lines: list[str]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines))
        os.replace(tmp, self.path)
