"""A real PostgreSQL server on loopback for the distributed-search tests (started per module, stopped after).

PostgreSQL refuses to run as root: as root the cluster belongs to the ``postgres`` user and every
server command runs through ``runuser``. Trust authentication on 127.0.0.1 only; fsync off (a
test database need not survive a crash). Skipped, with the reason, when the binaries are absent.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Small widths keep every sampled model tiny; the reference (paper) lies outside and is still trial 0.
TINY_SPACE = {
    "conv_widths": [[8, 16], [16, 24], [24, 32]],
    "token_widths": [[32, 48], [48, 64]],
    "enc_depths": [0, 1],
    "dec_depths": [0, 1],
    "mlp_ratio": [1, 2],
    "shift_size": [3, 5],
}
# The proxy settings of every test search (the CLI tests pass the same values as flags).
TINY_SEARCH = {
    "data": "synthetic:24",
    "size": 32,
    "latency_size": 32,  # the deployment size (256) would only slow the tests
    "epochs": 1,
    "steps_per_epoch": 1,
    "batch_size": 4,
    "target": "jetson-nano-estimate",
    "sampler": "random",
    "seed": 0,
    "early_stop": False,
    "heartbeat_interval": 1,
    "progress": False,
}


@pytest.fixture
def tiny_space():
    from search_spaces import SearchSpace

    return SearchSpace.from_dict(TINY_SPACE)


@pytest.fixture
def tiny_search(tiny_space):
    """``tiny_search(study_dir, **changes) -> SearchConfig``: a search that trains for seconds, not hours."""
    from search_spaces import SearchConfig

    def make(study_dir, **changes):
        return SearchConfig.from_options(study_dir, **{"trials": 2, "space": tiny_space, **TINY_SEARCH, **changes})

    return make


@pytest.fixture
def tiny_space_file(tmp_path):
    """The tiny space as a JSON file for ``--space``."""
    import json

    path = tmp_path / "space.json"
    path.write_text(json.dumps(TINY_SPACE))
    return path


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Trials here are tiny: one intra-op thread avoids thread contention on a busy 2-core runner."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/rtseg`` of a fresh server, removed afterwards."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install the 'postgresql' package")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root but there is no 'postgres' user to own the test cluster")
    base = Path(tempfile.mkdtemp(prefix="rtseg-pg-"))
    data = base / "data"
    data.mkdir()
    if as_root:
        for p in (base, data):
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        full = ["runuser", "-u", "postgres", "--", *cmd] if as_root else list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=60, check=check)

    log = base / "server.log"
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        for attempt in range(3):  # a free port can be taken before the server binds it (another xdist worker's)
            port = _free_port()
            opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
            started = run(str(bindir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", "30", "-l", str(log),
                          "-o", opts, check=False)  # fmt: skip
            if started.returncode == 0:
                break
            text = log.read_text() if log.exists() else ""
            if "Address already in use" not in text or attempt == 2:
                raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{text[-2000:]}")
            log.unlink()
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "rtseg")
        yield f"postgresql://postgres@127.0.0.1:{port}/rtseg"
    finally:
        run(str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w", check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """The loopback OpenSSH server of tests/profiling/conftest.py, loaded from there (one implementation)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "profiling" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_profiling_conftest_sshd", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield from module._serve(tmp_path_factory.mktemp("sshd"))


@pytest.fixture(scope="session")
def searched_study(tmp_path_factory):
    """``searched_study(trials) -> (template, summary)``: a tiny finished search with the settings of
    ``tiny_search`` (TINY_SEARCH, this seed), run once per session for each trial count.

    Read-only: a test copies the template (``shutil.copytree``) and works on its copy, so the tests
    that validate, compress or resume one stay independent of each other.
    """
    from search_spaces import SearchConfig, SearchSpace, run_search

    made: dict[int, tuple] = {}

    def get(trials: int):
        if trials not in made:
            study = tmp_path_factory.mktemp(f"searched-{trials}") / "nas"
            config = SearchConfig.from_options(study, trials=trials, space=SearchSpace.from_dict(TINY_SPACE),
                                               **TINY_SEARCH)  # fmt: skip
            made[trials] = (study, run_search(config))
        return made[trials]

    return get


@pytest.fixture(scope="session")
def compressed_study_template(tmp_path_factory, searched_study) -> Path:
    """A tiny finished search (jetson-nano-estimate target) whose best trial was pruned, then pruned + INT8.

    Read-only: tests copy it (``shutil.copytree``) before validating it.
    """
    from compress import FinetuneSpec, PruneSpec, QuantSpec, compress_study

    study = tmp_path_factory.mktemp("compressed") / "nas"
    shutil.copytree(searched_study(3)[0], study)
    compress_study(
        study, top_k=1, prune=PruneSpec(ratio=0.5, round_to=8), quantize=QuantSpec(calibration_images=4),
        finetune_spec=FinetuneSpec(epochs=1, steps_per_epoch=2), runs=3, progress=False,
    )  # fmt: skip
    return study
