"""The `iapo` command line.

Every command reports user errors (bad config key, missing file, corrupt row) as one line and
exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from iapo.errors import IapoError
from iapo.store import RunDir

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
    config: Annotated[Path | None, typer.Option(help="World config YAML (default: configs/world.yaml values).")] = None,
    train: Annotated[int | None, typer.Option(help="Override the number of training examples.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the world seed.")] = None,
    workers: Annotated[int, typer.Option(help="Processes drawing examples.")] = 2,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Generate the world's splits: `iapo world --out DIR`."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise typer.BadParameter("--out is required to generate a world (or use a subcommand, e.g. `iapo world show`)")
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
    console.print(f"wrote {n} examples in {manifest['seconds']:.1f}s ({rate:.0f}/s) to {out}: {splits}", soft_wrap=True)


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


def _zoo_config(config: Path | None):
    from iapo.config import build, load_yaml
    from iapo.supervised.zoo import ZooConfig

    return load_yaml(config, ZooConfig) if config else build(ZooConfig, {})


class _Bars:
    """One rich progress bar per training stage. Where the console is not a terminal (a grid run
    under nohup, its stderr in a file) a bar draws nothing until it ends, so each stage also logs a
    timestamped line at every quarter, and a pool logs each task it finishes (`row["finished"]`)."""

    def __init__(self, bar: Progress):
        self.bar, self.tasks = bar, {}
        self.log = not bar.console.is_terminal
        self.quarters: dict[str, int] = {}

    def __call__(self, stage: str, step: int, total: int, row: dict) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(f"{stage:>22}", total=total)
        loss = next((v for k, v in row.items() if k.endswith("/loss")), None)
        extra = f" loss {loss:.3f}" if loss is not None else ""
        if "reward/total" in row:
            extra += f" reward {row['reward/total']:.2f} acc {row.get('rollout/accuracy', float('nan')):.2f}"
        if "val/accuracy" in row:
            extra += f" val acc {row['val/accuracy']:.2f}"
        self.bar.update(self.tasks[stage], completed=step, description=f"{stage:>22}{extra}")
        quarter = 4 * step // max(total, 1)
        if self.log and ("finished" in row or quarter > self.quarters.get(stage, 0)):
            self.quarters[stage] = quarter
            done = f" ({row['finished']} done)" if "finished" in row else ""
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self.bar.console.print(f"{stamp} {stage} {step}/{total}{extra}{done}", highlight=False, soft_wrap=True)


@app.command()
@friendly
def sft(
    world: Annotated[Path, typer.Option(help="World directory (iapo world --out).")],
    out: Annotated[Path, typer.Option(help="Where the models go: out/<role>/ are checkpoint directories.")],
    config: Annotated[Path | None, typer.Option(help="Zoo config YAML (configs/models.yaml).")] = None,
    roles: Annotated[str | None, typer.Option(help="Comma-separated roles to train (default: all).")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads.")] = None,
) -> None:
    """Vision pretraining, then the language, (reading,) and multimodal SFT stages of every role.

    Resumable: rerun the same command after an interruption and it continues from the last
    checkpoint; finished roles are skipped."""
    import torch

    from iapo.supervised.zoo import build_zoo
    from iapo.world import World

    if threads:
        torch.set_num_threads(threads)
    cfg = _zoo_config(config)
    with progress_bar() as bar:
        summary = build_zoo(World(world), cfg, out, roles.split(",") if roles else None, _Bars(bar))
    for role, meta in summary["roles"].items():
        acc = meta["val_accuracy"]
        console.print(
            f"{role:>14}: {meta['params'] / 1e6:.2f}M params, val accuracy {100 * acc['mean']:.1f}% "
            f"[{100 * acc['ci_low']:.1f}, {100 * acc['ci_high']:.1f}] (n={acc['n']}), {meta['seconds']:.0f}s",
            soft_wrap=True,
        )


@app.command()
@friendly
def pretrain(
    world: Annotated[Path, typer.Option(help="World directory.")],
    out: Annotated[Path, typer.Option(help="Run directory; writes vision.pt.")],
    config: Annotated[Path | None, typer.Option(help="Zoo config YAML (its pretrain: and tokenizer: parts).")] = None,
    role: Annotated[str, typer.Option(help="Whose model size to pretrain the vision tower for.")] = "student",
) -> None:
    """Vision pretraining alone (also the first stage of `iapo sft`)."""
    from transformers import AutoTokenizer

    from iapo.models.build import make_processor
    from iapo.supervised.pretrain import pretrain_vision
    from iapo.supervised.zoo import train_tokenizers
    from iapo.world import World

    cfg = _zoo_config(config)
    w = World(world)
    train, val = w.load("train"), w.load("val")
    spec = cfg.roles[role].spec
    tok = AutoTokenizer.from_pretrained(train_tokenizers(train, cfg, out)["main"])
    with progress_bar() as bar:
        bars = _Bars(bar)
        res = pretrain_vision(
            train,
            val,
            spec,
            make_processor(tok, spec),
            cfg.pretrain,
            out,
            lambda s, n, r: bars("vision", s, n, r),
        )
    console.print(" ".join(f"{k}={v:.3f}" for k, v in res.items()), soft_wrap=True)


@app.command("eval")
@friendly
def eval_(
    model: Annotated[Path, typer.Option(help="Model directory (tiny or a real Qwen2.5-VL checkpoint).")],
    world: Annotated[Path | None, typer.Option(help="World directory (for --split).")] = None,
    split: Annotated[str, typer.Option(help="World split, e.g. val, test_table_lookup, ood.")] = "val",
    bench: Annotated[
        str | None,
        typer.Option(
            help="A public benchmark instead: wtq, tabfact, chartqa, charxiv, tablevqa, refocus, chartqa_vcot."
        ),
    ] = None,
    data: Annotated[Path | None, typer.Option(help="The benchmark's directory (official layout).")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Where rendered table images go (default DATA/../iapo_cache).")
    ] = None,
    no_tools: Annotated[bool, typer.Option("--no-tools", help="Offer no tools: answer directly.")] = False,
    limit: Annotated[int | None, typer.Option(help="Evaluate the first N examples only.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the JSON result here.")] = None,
    max_calls: Annotated[int, typer.Option(help="Tool calls allowed per episode.")] = 3,
    judge: Annotated[
        Path | None,
        typer.Option(help="CharXiv: a local chat model directory that grades answers (default: rule-based)."),
    ] = None,
) -> None:
    """Multi-turn agent accuracy with a 95% CI per family, and tool-call statistics, on a world
    split or a public benchmark."""
    from iapo.eval.report_table import print_eval
    from iapo.rollout.loop import RolloutConfig

    rcfg = RolloutConfig(greedy=True, tools=not no_tools, max_calls=max_calls)
    if bench is not None:
        from iapo.eval.benchmark import evaluate_benchmark

        if data is None:
            raise typer.BadParameter("--data DIR is required with --bench")
        res, loaded = evaluate_benchmark(model, bench, data, cache, rcfg, limit, judge)
        for msg in loaded.skipped:
            console.print(f"[yellow]skipped:[/] {escape(msg)}", soft_wrap=True)
        title = f"{model} on {bench}"
    else:
        from iapo.eval.evaluate import evaluate
        from iapo.models.build import load
        from iapo.world import World

        if world is None:
            raise typer.BadParameter("--world (or --bench and --data) is required")
        if judge is not None:
            raise typer.BadParameter("--judge applies to --bench charxiv only")
        exs, title = World(world).load(split, limit), f"{model} on {split}"
        if not exs:
            raise IapoError(f"{world}: no examples in split {split}")
        res = evaluate(*load(model), exs, rcfg)
    print_eval(res.summary, f"{title}{' (no tools)' if no_tools else ''}")
    if bench is not None:
        console.print(f"skipped rows: {len(loaded.skipped)}; episodes without applicable tools: "
                      f"{res.summary['tools_unavailable']}")  # fmt: skip
        _print_rendering(res.summary, loaded)
    if out:
        from iapo.eval.evaluate import write_result

        write_result(res, out)
        console.print(f"wrote {out}")


def _print_rendering(summary: dict, loaded) -> None:
    r = summary["rendering"]
    if loaded.answer_cells:
        console.print(f"answers that are a cell: {r['answer_cells']}, fully visible in the image: "
                      f"{r['answer_cells_visible']}")  # fmt: skip
    if r["missing_glyphs"]:
        console.print(f"[yellow]characters no font could draw:[/] {escape(str(r['missing_glyphs']))} "
                      "(pip install 'iapo[fonts]' adds Noto Sans CJK)")  # fmt: skip
    if r["over_max_pixels"]:
        console.print(f"[yellow]{r['over_max_pixels']} of {r['images']} images exceed the model's max_pixels "
                      f"({r['max_pixels']}) and are downscaled (smallest scale {r['min_scale']:.2f}); "
                      f"{r['text_under_legible_px']} end with text under 8 px[/]")  # fmt: skip


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _config_path(name: str) -> Path:
    p = CONFIGS / name
    if not p.exists():
        raise IapoError(f"{p}: default config not found (installed without the source tree?); pass --config")
    return p


def _experiment(config: Path, out: Path, overrides: dict | None = None, ledger: Path | None = None) -> Path:
    from iapo.config import load_yaml, read_yaml
    from iapo.experiment import ExperimentConfig, run_experiment

    cfg = load_yaml(config, ExperimentConfig, overrides)
    source = {"file": str(config), "overrides": overrides or {}, "yaml": read_yaml(config)}
    with progress_bar() as bar:
        run_experiment(cfg, out, _Bars(bar), raw_config=source, ledger=ledger)
    return _report(out)


def _report(exp_dir: Path, gallery: bool = True, out: Path | None = None) -> Path:
    """The episode gallery (runs the models) when asked, then the report (reads files only), both
    into `out` (default `exp_dir`)."""
    from iapo.report import load_results, write_report
    from iapo.viz import episode_gallery

    if gallery:
        episode_gallery(exp_dir, sorted({r["method"] for r in load_results(exp_dir)} - {"sft"}), out=out)
    return write_report(exp_dir, out)


def _print_summary(out: Path) -> None:
    from rich.table import Table

    from iapo.report import accuracy_table, load_results

    header, rows, _ = accuracy_table(load_results(out))
    keep = [0, 1, header.index("average")]  # per-split columns and every comparison are in the report
    t = Table(
        title="test accuracy %, mean [95% CI], the zoo as the unit (one zoo: the run); test splits + ood averaged"
    )
    for i in keep:
        t.add_column(header[i], no_wrap=True)
    for r in rows:
        t.add_row(*[r[i] for i in keep])
    Console(width=max(120, Console().width)).print(t)


@app.command()
@friendly
def experiment(
    config: Annotated[Path, typer.Option(help="Experiment YAML (configs/experiment.yaml: the full grid).")],
    out: Annotated[Path, typer.Option(help="Run directory (resumable: rerun to continue).")],
    ledger: Annotated[
        Path | None,
        typer.Option(
            help="Keep each finished run's records here (small files, fit to commit) and, on a fresh machine, "
            "restore them once the rebuilt world and zoo hash the same: a grid longer than one machine's life."
        ),
    ] = None,
) -> None:
    """Methods x seeds from one SFT student, then the report. Finished runs are never redone."""
    html = _experiment(config, out, ledger=ledger)
    _print_summary(out)
    console.print(f"report: {html}")


@app.command()
@friendly
def zoos(
    config: Annotated[Path, typer.Option(help="Experiment YAML whose zoo recipe, zoo_seeds and zoo_accept to use.")],
    out: Annotated[Path, typer.Option(help="The experiment directory the grid will run in (resumable).")],
    ledger: Annotated[
        Path | None, typer.Option(help="Keep each zoo (weights, no training state) and the table here, to commit.")
    ] = None,
) -> None:
    """Build every zoo of an experiment and judge each by its zoo_accept rules, without any run.
    Writes out/zoos.csv: every seed tried, accepted or why not."""
    from iapo.config import load_yaml
    from iapo.experiment import ExperimentConfig, build_zoos

    cfg = load_yaml(config, ExperimentConfig)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    with progress_bar() as bar:
        rows = build_zoos(cfg, out, _Bars(bar), ledger)
    for r in rows:
        verdict = "accepted" if r["accepted"] else f"rejected: {r['why']}"
        console.print(f"zoo {r['zoo']}: {verdict}", soft_wrap=True)
    console.print(f"zoo table: {out / 'zoos.csv'}")


@app.command()
@friendly
def quickstart(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/quickstart"),
    full: Annotated[bool, typer.Option("--full", help="Run the whole grid (configs/experiment.yaml), hours.")] = False,
    seeds: Annotated[int | None, typer.Option(help="Override the number of seeds.")] = None,
    zoos: Annotated[
        int | None, typer.Option(help="Build this many zoos (seeds 0..N-1) and run every method on each.")
    ] = None,
) -> None:
    """The embedded default end to end on CPU: world -> teacher and student SFT -> outcome GRPO
    and IAPO over 3 seeds -> evaluation -> report. `--zoos 2` makes the zoo a random factor."""
    import time

    t0 = time.perf_counter()
    overrides = {"seeds": list(range(seeds))} if seeds else {}
    if zoos:
        overrides["zoo_seeds"] = list(range(zoos))
    html = _experiment(_config_path("experiment.yaml" if full else "quickstart.yaml"), out, overrides or None)
    _print_summary(out)
    console.print(f"done in {time.perf_counter() - t0:.0f}s; report: {html}")


@app.command()
@friendly
def report(
    exp_dir: Annotated[Path, typer.Argument(help="Directory of `iapo experiment` / `iapo quickstart`.")],
    gallery: Annotated[
        bool, typer.Option(help="Draw the episode gallery first (runs the SFT student and seed-0 policies).")
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Write the report here instead (the run directory, or a ledger, is only read).")
    ] = None,
) -> None:
    """Write report.html / report.md / runs.csv / fig_*.png from a run directory or a ledger."""
    try:
        html = _report(exp_dir, gallery, out)
    except FileNotFoundError as e:
        raise IapoError(str(e)) from None
    _print_summary(exp_dir)
    console.print(f"report: {html}")


@app.command()
@friendly
def compare(
    runs: Annotated[Path, typer.Argument(help="runs.csv (or a run directory holding one; `iapo report` writes it).")],
    primary: Annotated[tuple[str, str], typer.Option(help="The pre-registered primary contrast: A B.")],
    vs: Annotated[
        list[str] | None, typer.Option(help="Reference arm(s): every arm against each, Holm-adjusted.")
    ] = None,
) -> None:
    """Accuracies and comparisons of a grid's runs with the zoo as the unit (as the report computes them)."""
    from iapo.report import compare_markdown, read_runs_csv

    arms, _ = read_runs_csv(runs)
    print(compare_markdown(arms, primary, vs or [primary[1]]))


@app.command()
@friendly
def plan(
    runs: Annotated[Path, typer.Argument(help="A pilot's runs.csv (or its run directory).")],
    a: Annotated[str, typer.Option(help="Arm A of the contrast to power.")],
    b: Annotated[str, typer.Option(help="Arm B.")],
    effects: Annotated[list[float] | None, typer.Option(help="True differences to detect, in points [5, 10].")] = None,
    zoos: Annotated[list[int] | None, typer.Option(help="Numbers of zoos to consider [2 4 6 8 10].")] = None,
    seeds: Annotated[list[int] | None, typer.Option(help="RL seeds per arm and zoo to consider [3 4 8].")] = None,
    arms: Annotated[int, typer.Option(help="Arms of the planned grid (for the wall time).")] = 8,
    workers: Annotated[int, typer.Option(help="Runs trained at once.")] = 2,
    minutes_per_run: Annotated[
        float | None, typer.Option(help="Minutes per run (default: the pilot's measured mean).")
    ] = None,
    measure: Annotated[str, typer.Option(help="The runs.csv column powered: accuracy or decoy_rate.")] = "accuracy",
) -> None:
    """How many zoos x seeds detect a difference with 80% power, and the grid's wall time, from a pilot."""
    from iapo.report import plan_markdown, read_runs_csv

    per_run, minutes = read_runs_csv(runs, measure)
    grid = (effects or [5.0, 10.0], zoos or [2, 4, 6, 8, 10], seeds or [3, 4, 8])
    print(plan_markdown(per_run, minutes, a, b, *grid, arms, workers, minutes_per_run))


@app.command()
@friendly
def train(
    config: Annotated[
        Path,
        typer.Option(
            help="Method YAML (configs/{outcome,exact_match,trm,iapo}.yaml), or a run directory: rerun that run "
            "exactly from its run.json (its config, student, zoo, world; options given here override)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, metrics.jsonl, tb/, result.json).")],
    world: Annotated[Path | None, typer.Option(help="World directory (unless the config has a data: section).")] = None,
    zoo: Annotated[Path | None, typer.Option(help="Model zoo directory (iapo sft --out); roles resolve here.")] = None,
    student: Annotated[str | None, typer.Option(help="Zoo role or model directory of the policy.")] = None,
    trm: Annotated[Path | None, typer.Option(help="Tool-call reward model directory (iapo trm train).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed.")] = None,
    engine: Annotated[
        str | None, typer.Option(help="Override the engine: own (compact loop) or trl (TRL's GRPOTrainer).")
    ] = None,
) -> None:
    """GRPO with one method's rewards; resumes from its last checkpoint when rerun."""
    from iapo.eval.report_table import print_eval
    from iapo.run import resolve_run, run_one

    over = {k: v for k, v in (("seed", seed), ("engine", engine)) if v is not None}
    name, cfg, sdir, zoo, trm, source = resolve_run(config, over, world, zoo, student, trm)
    with progress_bar() as bar:
        bars = _Bars(bar)
        res = run_one(name, cfg, sdir, zoo, trm, source, out, lambda st, s, n, r: bars(st, s, n, r))
    if not res:
        return  # not the main process of a distributed run
    for split, summary in res["splits"].items():
        print_eval(summary, f"{name} seed {cfg.seed} on {split}")
    console.print(f"wrote {RunDir(out).result}")


@app.command()
@friendly
def finetune(
    config: Annotated[Path, typer.Option(help="configs/qwen2_5_vl_3b/sft.yaml: checkpoint, data, SFT settings.")],
    out: Annotated[Path, typer.Option(help="Run directory; the fine-tuned model goes to OUT/policy.")],
) -> None:
    """SFT of any checkpoint directory on benchmark training files (e.g. ReFocus chartqa_vcot)."""
    from iapo.config import load_yaml
    from iapo.supervised.finetune import FinetuneConfig
    from iapo.supervised.finetune import finetune as run

    cfg = load_yaml(config, FinetuneConfig)
    with progress_bar() as bar:
        bars = _Bars(bar)
        path = run(cfg, out, lambda st, s, n, r: bars(f"sft/{st}", s, n, r))
    console.print(f"wrote {path}")


trm_app = typer.Typer(help="The tool-call reward model of the TRM baseline.", no_args_is_help=True)
app.add_typer(trm_app, name="trm")


@trm_app.command("train")
@friendly
def trm_train(
    world: Annotated[Path, typer.Option(help="World directory.")],
    out: Annotated[Path, typer.Option(help="Where trm.pt and trm.json go.")],
    steps: Annotated[int | None, typer.Option(help="Full-batch optimisation steps [default: TRM_STEPS].")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train on labelled good/bad calls of the world's train split; report val accuracy."""
    from iapo.rewards.trm import TRM_STEPS, save_trm, train_trm
    from iapo.world import World

    w = World(world)
    model, rep = train_trm(w.load("train"), w.load("val"), steps or TRM_STEPS, seed)
    save_trm(model, rep, out)
    console.print(
        f"TRM: train accuracy {100 * rep.train_accuracy:.1f}% (n={rep.n_train}), held-out (val) accuracy "
        f"{100 * rep.heldout_accuracy:.1f}% (n={rep.n_heldout}, {100 * rep.heldout_positive_rate:.0f}% good calls)"
    )


verl_app = typer.Typer(help="veRL integration: the world as veRL data, our tools as veRL tools.", no_args_is_help=True)
app.add_typer(verl_app, name="verl")


@verl_app.command("export")
@friendly
def verl_export(
    world: Annotated[Path, typer.Option(help="World directory.")],
    out: Annotated[Path, typer.Option(help="Where <split>.parquet and tool_config.yaml go.")],
    splits: Annotated[
        str, typer.Option(help="Comma-separated splits (never a test split for training).")
    ] = "train,val",
    limit: Annotated[int | None, typer.Option(help="First N examples per split.")] = None,
) -> None:
    """veRL's RL dataset (parquet) and tool config for `configs/verl/*.yaml`."""
    from iapo.rl.verl_adapter import export
    from iapo.world import World

    for path in export(World(world), out, tuple(s.strip() for s in splits.split(",") if s.strip()), limit):
        console.print(f"wrote {path}")


@app.command()
@friendly
def attribute(
    model: Annotated[Path, typer.Option(help="Model directory.")],
    episode: Annotated[
        Path, typer.Option(help="Episode JSON: an eval record (`iapo eval --out`) or {world, split, id}.")
    ],
    world: Annotated[Path | None, typer.Option(help="World directory (to rebuild the episode's images).")] = None,
    out: Annotated[Path, typer.Option(help="PNG heat map to write.")] = Path("attribution.png"),
    n_steps: Annotated[
        int | None, typer.Option(help="IG nodes of the heat map (default: iapo.viz.HEATMAP_STEPS).")
    ] = None,
    turn: Annotated[int, typer.Option(help="Which model turn to explain (-1 = final).")] = -1,
) -> None:
    """Per-component attribution of one episode, printed and plotted (image heat map + text)."""
    from iapo.viz import HEATMAP_STEPS, attribute_episode_file

    shares = attribute_episode_file(model, episode, world, out, n_steps or HEATMAP_STEPS, turn)
    for comp, p in shares.items():
        Console().print(f"{comp:>12}: {100 * p:5.1f}%  " + "#" * round(40 * p))
    console.print(f"wrote {out}")


def main() -> None:
    import os

    import torch

    if not torch.cuda.is_available():  # DeepSpeed (pulled in by transformers) would warn in every process
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    app()


if __name__ == "__main__":
    main()
