"""Command-line entry: one small module per verb, each turning arguments into typed configs."""

from rtseg_nas.cli._main import COMMANDS, main

__all__ = ["COMMANDS", "main"]
