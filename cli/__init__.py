"""Command-line entry: one small module per verb, each turning arguments into typed configs."""

from cli._main import COMMANDS, main

__all__ = ["COMMANDS", "main"]
