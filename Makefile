# The README's two commands. Each does its own set-up first (idempotent).
.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	python run.py demo

# Two pytest-xdist workers, one per core; a module (or the modules sharing a study fixture) stays on one
# worker, the slowest groups first (tests/conftest.py).
test: setup
	python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder

lint:
	ruff check . && ruff format --check .
