"""Suite-wide test settings.

Tests run tiny models for which one thread is fastest; more threads only add OpenMP start-up and,
on a shared 2-core machine, spin-waiting against other processes. Tests that time several thread
counts set them explicitly.

``make test`` runs the suite on two pytest-xdist workers (``-n 2``, one per core) with ``--dist loadgroup
--no-loadscope-reorder`` (the Makefile): each worker is its own process with its own session fixtures (its
own sshd and PostgreSQL on free ports, its own ``tmp_path_factory`` folder), and the hook below keeps the
tests that share an expensive fixture on one worker and hands out the slowest first.
"""

import os
from collections import defaultdict

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses the tests start
torch.set_num_threads(1)

# Session fixtures that run a real search or compression (seconds of training each): the modules that
# use one form one xdist group, so that only one worker builds it.
SHARED_STUDIES = ("compressed_study_template", "mf_search")

# The slowest groups (20-100 s each in a serial run on 2026-12-07, together about a third of the suite) start
# first under -n: xdist hands out groups in collection order (--no-loadscope-reorder), so the run ends on short
# modules instead of one worker idling while the other trains the demo. A stale entry only costs balance.
SLOW_FIRST = (
    "compressed_study_template",  # test_validate_variants.py + test_validate_resize.py
    "tests/search_spaces/test_validate.py",
    "tests/search_spaces/test_distributed.py",
    "tests/rtseg_nas/test_demo.py",
    "tests/rtseg_nas/test_latency_cli.py",
    "tests/profiling/test_predictor.py",
    "tests/search_spaces/test_budget.py",
    "tests/search_spaces/test_validate_seeds.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """One xdist group per test module (its module-scoped fixtures, e.g. a trained model or a PostgreSQL
    server, are built once), or per shared study fixture for the modules that use one; on an xdist worker,
    the SLOW_FIRST groups first. Without ``-n`` the marks change nothing and the order is the files'."""
    for entry in SLOW_FIRST:
        if entry not in SHARED_STUDIES and not (config.rootpath / entry).is_file():
            raise pytest.UsageError(f"tests/conftest.py SLOW_FIRST names {entry}, which does not exist")
    modules = defaultdict(list)
    for item in items:
        modules[item.path].append(item)
    groups = {}
    for path, module_items in modules.items():
        used = {name for item in module_items for name in item.fixturenames}
        shared = [name for name in SHARED_STUDIES if name in used]
        group = shared[0] if shared else path.relative_to(config.rootpath).as_posix()
        for item in module_items:
            if item.get_closest_marker("xdist_group") is None:
                item.add_marker(pytest.mark.xdist_group(group))
            groups[item] = group
    if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker sorts alike: xdist checks they collected one list
        rank = {group: i for i, group in enumerate(SLOW_FIRST)}
        items.sort(key=lambda item: rank.get(groups[item], len(rank)))  # stable: file order otherwise
