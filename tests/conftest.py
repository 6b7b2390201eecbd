"""Suite-wide test settings.

Tests run tiny models for which one thread is fastest; more threads only add OpenMP start-up and,
on a shared 2-core machine, spin-waiting against other processes. Tests that time several thread
counts set them explicitly.
"""

import os

import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses the tests start
torch.set_num_threads(1)
