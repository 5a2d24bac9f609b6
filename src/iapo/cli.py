"""The `iapo` command line.

Every command reports user errors (bad config key, missing file, corrupt row) as one line and
exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from iapo.errors import IapoError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train small VLM agents to use visual tools with RL (IAPO).",
)
world_app = typer.Typer(help="Generate the chart/table world and look at it.", invoke_without_command=True)
app.add_typer(world_app, name="world")
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn IapoError into one red line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IapoError as e:
            console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@world_app.callback()
@friendly
def world(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Directory to write the world into.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="World config YAML (default: configs/world.yaml values).")
    ] = None,
    train: Annotated[int | None, typer.Option(help="Override the number of training examples.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the world seed.")] = None,
    workers: Annotated[int, typer.Option(help="Processes drawing examples.")] = 2,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Generate the world's splits: `iapo world --out DIR`."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise typer.BadParameter(
            "--out is required to generate a world (or use a subcommand, e.g. `iapo world show`)"
        )
    from iapo.config import build, load_yaml
    from iapo.world import WorldConfig, write_world

    overrides = {k: v for k, v in {"train": train, "seed": seed}.items() if v is not None}
    cfg = load_yaml(config, WorldConfig, overrides) if config else build(WorldConfig, overrides)
    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def report(split: str, done: int, total: int) -> None:
            if split not in tasks:
                tasks[split] = bar.add_task(f"{split:>20}", total=total)
            bar.update(tasks[split], completed=done)

        manifest = write_world(cfg, out, overwrite=overwrite, workers=workers, progress=report)
    n = sum(manifest["splits"].values())
    rate = n / max(manifest["seconds"], 1e-9)
    splits = ", ".join(f"{k}={v}" for k, v in manifest["splits"].items())
    console.print(
        f"wrote {n} examples in {manifest['seconds']:.1f}s ({rate:.0f}/s) to {out}: {splits}", soft_wrap=True
    )


@world_app.command("show")
@friendly
def world_show(
    data: Annotated[Path, typer.Option(help="World directory.")],
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("world_gallery.png"),
    split: Annotated[str, typer.Option(help="Split to draw from.")] = "train",
    n: Annotated[int, typer.Option(help="Number of examples.")] = 8,
    seed: Annotated[int, typer.Option(help="Which examples and paths to show.")] = 0,
) -> None:
    """Write a PNG gallery of examples with one valid tool path each."""
    import random

    from iapo.world import World
    from iapo.world.gallery import write_gallery

    w = World(data)
    exs = w.load(split)
    pick = random.Random(seed).sample(exs, min(n, len(exs)))
    write_gallery(pick, out, seed=seed)
    console.print(f"wrote {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
