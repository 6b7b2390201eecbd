"""Arguments shared by several verbs, defined once so they read the same everywhere."""

from __future__ import annotations

import argparse


def add_arch(p: argparse.ArgumentParser, *, default: str | None = "paper") -> None:
    p.add_argument(
        "--arch",
        default=default,
        help="a preset (paper, paper-figure, unext) or an RTSegConfig JSON file (default: %(default)s)",
    )


def add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="synthetic",
        help="dataset: 'synthetic' (built-in phantom; 'synthetic:N' for N images), 'jnu-ifm:PATH' or "
        "'psfhs:PATH' (default: %(default)s)",
    )


def add_size(p: argparse.ArgumentParser, default: int = 256) -> None:
    p.add_argument("--size", type=int, default=default, help="input height and width in pixels (default: %(default)s)")


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N (default: auto)")


def add_json_out(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", metavar="PATH", help=f"also write {what} as JSON to PATH ('-' for stdout)")


def add_model_source(p: argparse.ArgumentParser, *, onnx: bool = True) -> None:
    """--arch / --checkpoint [/ --onnx]: what to profile (the paper preset when none is given)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--arch", help="a preset (paper, paper-figure, unext) or an RTSegConfig JSON file (default: paper)"
    )
    group.add_argument("--checkpoint", metavar="CKPT", help="a checkpoint written by train/prune")
    if onnx:
        group.add_argument(
            "--onnx", metavar="FILE", help="an ONNX file (no counts; ONNX Runtime or remote timing only)"
        )


def model_source(args: argparse.Namespace) -> str:
    return getattr(args, "onnx", None) or args.checkpoint or args.arch or "paper"
