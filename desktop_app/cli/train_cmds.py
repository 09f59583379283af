"""`fdface train RECIPE`, `fdface eval lfw MODEL`, `fdface export-model RUN`. Training needs the ``train`` extra."""

from __future__ import annotations

import argparse


def cmd_train(args: argparse.Namespace) -> int:
    from desktop_app.cli import CliError

    try:
        from desktop_app.train.loop import Trainer
        from desktop_app.train.recipe import load_recipe
    except ImportError as exc:
        raise CliError(f"training needs PyTorch ({exc}): pip install -e '.[train]'") from None
    try:
        recipe = load_recipe(args.recipe)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    out = args.out or f"runs/{recipe.name}"
    final = Trainer(recipe, out).run(resume=not args.fresh)
    print(f"done: {final}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a net from a recipe (recipes/*.toml); resumes from RUN/last.pt")
    p.add_argument("recipe")
    p.add_argument("--out", help="run directory (default runs/<recipe name>)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.set_defaults(func=cmd_train)
