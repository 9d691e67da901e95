"""Command line: ``python -m lesson_lib {train,export,evaluate,train-scorer,demo,bench,assignments} ...``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lesson_lib")
    sub = parser.add_subparsers(dest="command", required=True)

    from . import train
    train.add_arguments(sub.add_parser("train", help="train a generator+critic pair (lesson 04)"))
    exp = sub.add_parser("export", help="strip the optimiser state from a training checkpoint")
    exp.add_argument("src")
    exp.add_argument("dst")
    from . import demo, evaluate, semantic
    demo.add_arguments(sub.add_parser("demo", help="inpaint a few held-out images, write build/demo.png"))
    evaluate.add_arguments(sub.add_parser("evaluate", help="the ablation of Tables 1-2 on held-out images (lesson 09)"))
    semantic.add_arguments(sub.add_parser("train-scorer", help="train a semantic-accuracy scorer (lesson 09)"))
    bench = sub.add_parser("bench", help="print timings of training, inpainting and the notebooks")
    bench.add_argument("what", nargs="?", default="all", choices=("train", "inpaint", "notebooks", "all"))
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    from . import assignments
    assignments.add_arguments(sub.add_parser("assignments", help="write student notebooks (solutions replaced by TODOs)"))

    args = parser.parse_args(argv)
    if args.command == "train":
        return train.main(args)
    if args.command == "export":
        from .checkpoints import export_checkpoint
        cfg = export_checkpoint(args.src, args.dst)["config"]
        print(f"exported {args.src} -> {args.dst} ({cfg['iterations']} iterations)")
        return 0
    if args.command == "demo":
        return demo.main(args)
    if args.command == "evaluate":
        return evaluate.main(args)
    if args.command == "train-scorer":
        return semantic.main(args)
    if args.command == "bench":
        from .bench import main as bench_main
        return bench_main(args.what, args.threads)
    if args.command == "assignments":
        return assignments.main(args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
