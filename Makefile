# The README's two commands. Each does its own set-up first (idempotent).
.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	python run.py demo

test: setup
	python -m pytest

lint:
	ruff check . && ruff format --check .
