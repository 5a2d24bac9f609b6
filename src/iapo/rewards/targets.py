"""Attribution targets: the component shares a student episode is compared with.

- `teacher_own`: the frozen teacher answers the question ITSELF (greedy, or k samples); its
  final-turn component shares are averaged over its correct episodes (over all of them where
  none is right). One vector per question, computed once before RL and cached on disk
  (`TargetCache`), so an RL step pays only the student's attribution. It says where a model that
  solves the question looks, tools included: a student that skips the teacher's tool has no
  tool-output share to match.
- `evidence`: a fixed vector per question with no teacher: most of the share on the component
  that holds the evidence in its most readable form (the tool output when the question has a
  valid tool path, else the image), the rest on the question. The control "what an ideal
  teacher would say".
- `random`: Dirichlet(1) over the components the student's episode has (a fresh draw each
  time). The control "any target at all".
- `teacher_own` with `permute`: each question gets the teacher_own target of another question
  of the same template (`derangement`; region shares carried over by position,
  `attribution.regions.move_regions`). The incentive keeps its shape (the teacher's tool-output
  share, where on such a page it looks); what the teacher knows about this question is gone.
- `teacher_forced` (in `iapo.rewards.alignment`): the teacher's attribution of the student's
  own rollout (teacher-forced, with the term's estimator), in the step.

With region-level alignment on (`regions` > 0), a target also holds region shares (where inside
the images the attribution falls, in the original image's coordinates: `iapo.attribution.regions`):
the teacher's own, averaged like its component shares; for `evidence`, uniform over the world's
evidence cells; for `random`, Dirichlet(1) over the question's regions.

Only shares cross from teacher to student, so teachers of any size or tokenizer work.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from iapo.attribution import (
    AttributionSettings,
    components_and_regions,
    mean_region_shares,
    mean_shares,
    regions_of,
)
from iapo.attribution.regions import PATCHES
from iapo.data.example import Example
from iapo.models.build import META
from iapo.provenance import content_hash, write_text
from iapo.rollout.episode import COMPONENTS
from iapo.rollout.loop import RolloutConfig, rollout

log = logging.getLogger(__name__)


def evidence_target(ex: Example, share: float = 0.8) -> torch.Tensor:
    """(C,) `share` on tool_output if the question has a valid tool path, else on image; the
    rest on question."""
    q = torch.zeros(len(COMPONENTS))
    q[COMPONENTS.index("tool_output" if ex.valid_paths else "image")] = share
    q[COMPONENTS.index("question")] = 1.0 - share
    return q


def evidence_regions(ex: Example, patches: int = PATCHES) -> dict[str, float] | None:
    """Uniform over the question's evidence units (the cells or chart values the answer needs);
    None when it names none of its image's regions."""
    names = [u for u in (ex.evidence or []) if u in regions_of(ex.layout, patches)]
    return {u: 1.0 / len(names) for u in names} if names else None


def checkpoint_fingerprint(model_dir: Path | None, model=None) -> str:
    """Identifies a teacher checkpoint by content: every file of its directory but the toolkit's
    own notes (`iapo.json`: build times), byte for byte. A copy, a git checkout or another
    machine's identical build gives the same fingerprint, so its cached targets are found; a
    retrained or replaced checkpoint gives another. Read once per process and file state (GBs of
    a real teacher: seconds). Without a directory, the hash of the weights themselves."""
    if model_dir is not None and Path(model_dir).is_dir():
        files = sorted(f for f in Path(model_dir).iterdir() if f.is_file() and f.name != META)
        return _files_hash(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if model is None:
        raise ValueError("a teacher fingerprint needs its directory or the model")
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


@functools.cache
def _files_hash(files: tuple[tuple[str, int, int], ...]) -> str:
    """`content_hash` of the files, keyed by (path, size, mtime) so that a file is read once."""
    paths = [Path(f) for f, _, _ in files]
    return content_hash(paths, paths[0].parent)[:16] if paths else hashlib.sha256().hexdigest()[:16]


def template_of(ex: Example) -> tuple[str, str, str]:
    """Questions of one template: the same family, image kind and question template."""
    return ex.family, ex.style, str(ex.meta.get("template", ""))


def derangement(examples: list[Example], seed: int) -> dict[str, Example]:
    """question key -> the question whose target it takes: within each template, the distinct
    questions in a seeded random order, each paired with the next around the cycle, so none keeps
    its own. A template with a single question has no partner (its term is dropped)."""
    groups: dict[tuple, dict[str, Example]] = {}
    for ex in examples:
        groups.setdefault(template_of(ex), {})[question_key(ex)] = ex
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Example] = {}
    for _, qs in sorted(groups.items()):
        keys = sorted(qs)
        if len(keys) < 2:
            continue
        order = [keys[i] for i in torch.randperm(len(keys), generator=gen).tolist()]
        out.update({a: qs[b] for a, b in zip(order, order[1:] + order[:1], strict=True)})
    return out


def question_key(ex: Example) -> str:
    """The question's content: its fields and its image bytes (not its position in a file)."""
    h = hashlib.sha256(json.dumps(ex.to_json(), sort_keys=True).encode())
    path = ex.image_file()
    if path.exists():
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


class TargetCache:
    """question key -> target record, one JSON file per (teacher, attribution and rollout settings).

    A change in the teacher checkpoint or the settings selects another file; a changed question
    (text, answer, image) another key. Entries are written atomically after each batch."""

    def __init__(self, root: Path, teacher_fp: str, settings: dict):
        blob = json.dumps({"teacher": teacher_fp, **settings}, sort_keys=True)
        self.path = Path(root) / f"teacher_own-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.json"
        self.settings = json.loads(blob)
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            self.entries = json.loads(self.path.read_text())["targets"]

    def get(self, ex: Example) -> torch.Tensor | None:
        e = self.entries.get(question_key(ex))
        return None if e is None else torch.tensor(e["p"])

    def get_regions(self, ex: Example) -> dict[str, float] | None:
        e = self.entries.get(question_key(ex))
        return None if e is None else e.get("regions")

    def missing(self, examples: list[Example]) -> list[Example]:
        seen, out = set(), []
        for ex in examples:
            k = question_key(ex)
            if k not in self.entries and k not in seen:
                seen.add(k)
                out.append(ex)
        return out

    def put(self, records: dict[str, dict]) -> None:
        # re-read first: another process may have added entries
        if self.path.exists():
            self.entries = {**json.loads(self.path.read_text())["targets"], **self.entries}
        self.entries.update(records)
        write_text(self.path, json.dumps({"settings": self.settings, "targets": self.entries}))


def teacher_own_records(
    teacher, processor, examples: list[Example], rcfg: RolloutConfig, samples: int, attr: AttributionSettings,
    regions: AttributionSettings | None = None, patches: int = PATCHES,
) -> dict[str, dict]:  # fmt: skip
    """The teacher's own episodes for each question -> {question key: record}. A record holds
    p (C,), with `regions` (a token-level estimator) the region shares too, the number of
    episodes, how many were right, and which were averaged (its correct episodes, else all)."""
    greedy = samples == 1
    group = [ex for ex in examples for _ in range(samples)]
    eps = rollout(teacher, processor, group, rcfg.model_copy(update={"greedy": greedy}))
    turns, reg = components_and_regions(
        teacher, processor, [(e.segments, e.example.layout) for e in eps], "final", attr, regions, patches
    )
    reg = reg or [None] * len(eps)
    out: dict[str, dict] = {}
    for i, ex in enumerate(examples):
        mine = list(range(i * samples, (i + 1) * samples))
        right = [j for j in mine if eps[j].correct and mean_shares(turns[j]) is not None]
        used = right or [j for j in mine if mean_shares(turns[j]) is not None]
        if not used:
            continue  # no finite attribution: no target, the term is dropped for this question
        rec = {
            "id": ex.id,
            "p": torch.stack([mean_shares(turns[j]) for j in used]).mean(0).tolist(),
            "episodes": samples,
            "correct": sum(eps[j].correct > 0 for j in mine),
            "averaged": "correct" if right else "all",
            "calls": sum(len(eps[j].calls) for j in mine) / samples,
        }
        if regions is not None:
            rec["regions"] = mean_region_shares([reg[j] for j in used if reg[j] is not None])
        out[question_key(ex)] = rec
    return out


def fill_cache(
    cache: TargetCache,
    teacher,
    processor,
    examples: list[Example],
    rcfg: RolloutConfig,
    samples: int,
    attr: AttributionSettings,
    batch: int = 32,
    progress: Callable[[int, int], None] | None = None,
    regions: AttributionSettings | None = None,
    patches: int = PATCHES,
) -> int:
    """Compute the targets the cache lacks for `examples`, in batches; returns how many."""
    todo = cache.missing(examples)
    for i in range(0, len(todo), batch):
        part = todo[i : i + batch]
        cache.put(teacher_own_records(teacher, processor, part, rcfg, samples, attr, regions, patches))
        if progress:
            progress(min(i + batch, len(todo)), len(todo))
    if todo:
        recs = [cache.entries[k] for k in map(question_key, todo) if k in cache.entries]
        n_all = sum(r["averaged"] == "all" for r in recs)
        log.info(
            "teacher_own targets: %d questions computed, %d averaged over correct episodes, %d over all "
            "(the teacher was never right)",
            len(recs), len(recs) - n_all, n_all,
        )  # fmt: skip
    return len(todo)
