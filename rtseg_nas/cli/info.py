"""Print an RTSeg-Net family member's configuration and its true parameter count.

Examples:
  rtseg-nas info --arch paper
  rtseg-nas info --arch unext --json
  rtseg-nas info --arch my_variant.json
"""

from __future__ import annotations

import argparse

from rtseg_nas.cli._args import add_arch, add_json_out, emit


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_arch(p)
    add_json_out(p, '{"params": ..., "config": {...}}')


def run(args: argparse.Namespace) -> int:
    from models import build_model, count_parameters, create_config

    cfg = create_config(args.arch)
    params = count_parameters(build_model(cfg))

    def show() -> None:
        width = max(len(k) for k in cfg.to_dict())
        print(f"architecture: {args.arch}")
        for key, value in cfg.to_dict().items():
            print(f"  {key:<{width}}  {value}")
        print(f"parameters (true count, sum of p.numel()): {params:,}")

    emit(args.json, {"params": params, "config": cfg.to_dict()}, show, what="config")
    return 0
