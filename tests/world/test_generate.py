from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from iapo.answers import grade
from iapo.tools import CallClass, ToolSession, format_tool_call, parse_turn
from iapo.tools.registry import compile_call, layout_after, validate_arguments
from iapo.world import FAMILIES, World, WorldConfig, example_image, generate_example, grid_after
from iapo.world.families import DEFAULT_TEMPLATES, TEMPLATES
from iapo.world.generate import content_hash
from iapo.world.glyphs import DIGITS, MASKED, TOKEN
from iapo.world.scene import TokenGrid


def test_examples_are_deterministic_functions_of_seed_split_index():
    cfg = WorldConfig()
    a, b = generate_example(cfg, "train", 7), generate_example(cfg, "train", 7)
    assert a.example.to_json() == b.example.to_json()
    assert generate_example(cfg, "val", 7).content_hash != a.content_hash
    assert generate_example(WorldConfig(seed=1), "train", 7).content_hash != a.content_hash


def test_splits_exist_and_are_disjoint_by_seed_and_content(small_world: World):
    assert set(small_world.splits) == {"train", "val", "ood", *(f"test_{f}" for f in FAMILIES)}
    seen: dict[str, str] = {}
    for split in small_world.splits:
        for ex in small_world.load(split):
            assert ex.split == split and ex.id.startswith(split + "-")  # the split is part of the seed
            h = hashlib.sha1((json.dumps(ex.grid) + ex.question).encode()).hexdigest()
            assert h not in seen, f"{ex.id} duplicates {seen[h]}"
            seen[h] = ex.id
    for f in FAMILIES:
        assert {e.family for e in small_world.load(f"test_{f}")} == {f}


def test_ood_is_larger_and_uses_unseen_headers(small_world: World):
    train_headers = {t for e in small_world.load("train") for row in e.grid for t in row if t.isalpha() and len(t) == 1}
    ood = small_world.load("ood")
    ood_headers = {t for e in ood for row in e.grid for t in row if t.isalpha() and len(t) == 1}
    assert not (train_headers & ood_headers)
    big = max(len(e.grid) * len(e.grid[0]) for e in small_world.load("train"))
    assert max(len(e.grid) * len(e.grid[0]) for e in ood) > big


def test_at_least_30_percent_of_training_questions_have_two_valid_paths(small_world: World):
    train = small_world.load("train")
    share = np.mean([len({json.dumps(p, sort_keys=True) for p in e.valid_paths}) >= 2 for e in train])
    assert share >= 0.30, share


def test_gold_path_and_gold_answer_score_100_percent_on_every_split(small_world: World):
    for split in small_world.splits:
        for ex in small_world.load(split):
            s = ToolSession(example_image(ex), ex.layout, frozenset(ex.evidence), frozenset(ex.context))
            for call in ex.reference_path:
                r = s.step(parse_turn(format_tool_call(call["name"], call["arguments"])))
                assert r.cls == CallClass.VALID_USEFUL, (ex.id, call, r)
            assert s.units.reveals(frozenset(ex.evidence), frozenset(ex.context)), ex.id
            assert grade(ex.answer, ex.gold, ex.metric) == 1.0


def _unit_grid(ex) -> TokenGrid:
    """Token grid whose labels are the unit each token belongs to ('' for none)."""
    h, w = len(ex.grid), len(ex.grid[0])
    units = np.full((h, w), "", dtype=object)
    for name, box in ex.layout.units().items():
        ys, xs = TokenGrid(units, np.zeros((h, w), np.uint8)).token_slice(box)
        units[ys, xs] = name
    return TokenGrid(units, np.zeros((h, w), np.uint8))


def _salient_tokens(labels: TokenGrid, units: TokenGrid) -> tuple[set[str], list[str]]:
    """What a reader of the edited image alone sees as salient: visible content tokens with the
    most emphasis. Returns (units those tokens belong to, digit glyphs on them)."""
    visible = (labels.labels != MASKED) & (units.labels != "")
    emph = np.where(visible, labels.emphasis.astype(int), -1)
    top = emph[visible].max()
    mask = visible & (emph == top)
    return set(units.labels[mask]), [t for t in labels.labels[mask] if t in DIGITS]


def test_after_every_valid_path_only_the_evidence_is_salient(small_world: World):
    """A scripted reader of the edited image only: non-evidence cells left salient = 0, and for
    value/sum/verify questions the salient digits alone give the answer."""
    checked = non_evidence = answered = 0
    for split in ("train", "ood"):
        for ex in small_world.load(split)[:120]:
            for path in ex.valid_paths:
                final = grid_after(ex, path)[-1]
                # replay the path on a grid of unit names with the same primitives
                units, lay = _unit_grid(ex), ex.layout
                for call in path:
                    ops = compile_call(call["name"], validate_arguments(call["name"], call["arguments"], lay), lay)
                    units = units.apply(ops)
                    lay = layout_after(ops, lay)
                salient, digits = _salient_tokens(final, units)
                non_evidence += len(salient - set(ex.evidence))
                assert set(ex.evidence) <= salient
                t = ex.meta["template"]
                if t in ("value", "chart_value"):
                    assert digits == [ex.answer], (ex.id, path, digits)
                    answered += 1
                elif t in ("sum_rows", "chart_sum"):
                    assert sum(int(d) for d in digits) == int(ex.answer)
                    answered += 1
                checked += 1
    assert checked > 500 and answered > 100
    assert non_evidence == 0


def test_tool_output_labels_match_pixels(small_world: World):
    """Tokens the label interpreter calls masked are mask-grey in the tool's pixel output; glyph
    tokens still show dark ink."""
    from iapo.tools import run_tool

    for ex in small_world.load("train")[:40]:
        img, lay = example_image(ex), ex.layout
        path = ex.valid_paths[-1]
        for call in path:
            img, lay = run_tool(img, lay, call["name"], call["arguments"])
        labels = grid_after(ex, path)[-1]
        a = np.asarray(img)
        assert a.shape[:2] == (labels.shape[0] * TOKEN, labels.shape[1] * TOKEN)
        for (r, c), lab in np.ndenumerate(labels.labels):
            tile = a[r * TOKEN + 3 : (r + 1) * TOKEN - 3, c * TOKEN + 3 : (c + 1) * TOKEN - 3]
            if lab == MASKED:
                assert (tile == (150, 150, 150)).all()
            elif len(lab) == 1 and lab not in ".#":
                assert (tile.min(axis=-1) < 60).any()


def test_content_hash_depends_on_image_and_question():
    g = generate_example(WorldConfig(), "train", 0)
    assert content_hash(g.scene, g.example.question) != content_hash(g.scene, g.example.question + "?")


def test_bad_config_values_are_refused():
    from iapo.config import build
    from iapo.errors import ConfigError

    with pytest.raises(ConfigError, match="family_weights"):
        build(WorldConfig, {"family_weights": {"nope": 1.0}})
    with pytest.raises(ConfigError, match="trian: unknown key"):
        build(WorldConfig, {"trian": 5})


def _pairs(rationale: str) -> dict[str, int]:
    return {name: int(v) for name, v in (p.rsplit(" ", 1) for p in rationale.split(", "))}


def test_rationale_states_the_values_the_answer_follows_from(small_world: World):
    """Every world example carries the values a demonstration writes in <think> before answering,
    and the gold answer follows from them (SFT with `rationale: true` teaches exactly this)."""
    seen = set()
    for split in small_world.splits:
        for ex in small_world.load(split):
            t, r = ex.meta["template"], ex.rationale
            seen.add(t)
            if t in ("value", "chart_value"):
                assert r == ex.answer, ex.id
            elif t in ("diff", "series_diff", "sum_rows", "chart_sum"):
                a, op, b = r.split(" ")
                assert str(int(a) - int(b) if op == "-" else int(a) + int(b)) == ex.answer, ex.id
            elif t in ("compare", "chart_compare", "series_compare", "argmax"):
                vals = _pairs(r)
                assert max(vals, key=vals.__getitem__) == ex.answer, ex.id
            elif t == "verify_compare":
                a, b = _pairs(r).values()
                assert ex.answer == ("true" if a > b else "false"), ex.id
            else:
                assert t == "verify_value" and (ex.question.endswith(f" is {r}.") == (ex.answer == "true")), ex.id
    assert len(seen) >= 10


def test_templates_select_question_types_and_drop_families_left_without_one():
    from iapo.config import build
    from iapo.errors import ConfigError

    cfg = WorldConfig(templates=["value", "chart_value"])
    assert set(cfg.split_sizes()) == {"test_table_lookup", "test_chart_value", "ood", "val", "train"}
    drawn = {generate_example(cfg, "train", i).example.meta["template"] for i in range(60)}
    assert drawn == {"value", "chart_value"}
    # a family named for the test split draws only the kept templates too
    assert {
        generate_example(cfg, "test_table_lookup", i, "table_lookup").example.meta["template"] for i in range(20)
    } == {"value"}
    # naming every default template draws exactly the default world (opt-in ones stay out of it)
    every = WorldConfig(templates=list(DEFAULT_TEMPLATES))
    assert "value_pair" in TEMPLATES and "value_pair" not in DEFAULT_TEMPLATES
    assert [generate_example(every, "train", i).content_hash for i in range(20)] == [
        generate_example(WorldConfig(), "train", i).content_hash for i in range(20)
    ]
    with pytest.raises(ConfigError, match="unknown templates"):
        build(WorldConfig, {"templates": ["value", "nope"]})
    with pytest.raises(ConfigError, match="no family with a positive weight"):
        build(WorldConfig, {"templates": ["value"], "family_weights": {"table_lookup": 0.0, "chart_value": 1.0}})


def test_template_names_match_what_each_family_writes():
    """`templates` selects by the names in FAMILY_TEMPLATES; they must be the names the
    template functions write into `meta.template`, or a selection would silently draw nothing."""
    from iapo.world.families import FAMILY_TEMPLATES

    for family, draws in FAMILY_TEMPLATES.items():
        for d in draws:
            cfg = WorldConfig(templates=[d.name])
            drawn = {generate_example(cfg, "train", i, family).example.meta["template"] for i in range(8)}
            assert drawn == {d.name}, (family, d.template.__name__)


def test_value_pair_reads_two_cells_of_a_row_as_one_number():
    """The sparse regime's template: 100 possible answers, both cells are the evidence, and a
    tool path that leaves just them salient exists for every question."""
    cfg = WorldConfig(templates=["value_pair"], in_dist={"table_rows": [5, 6], "table_cols": [5, 6]})
    answers = set()
    for i in range(40):
        ex = generate_example(cfg, "train", i).example
        (r, a), (r2, b) = (e.split("/") for e in ex.evidence)
        grid_cells = {(row[0], col): v for row in ex.grid[1:] for col, v in zip(ex.grid[0][1:], row[1:], strict=True)}
        assert r == r2 and a != b and ex.meta["template"] == "value_pair"
        assert ex.answer == grid_cells[(r, a)] + grid_cells[(r, b)], ex.id
        assert "decoy" not in ex.meta  # only the distractor templates name a second row
        assert ex.valid_paths and grade(ex.answer, ex.answer, ex.metric)
        answers.add(ex.answer)
    assert len(answers) >= 25  # a wide answer space: a guess is rarely right


def _row_call(ex, rows: list[str]) -> CallClass:
    """How the world classes a call that highlights `rows` as the first call of `ex`'s episode."""
    s = ToolSession(None, ex.layout, frozenset(ex.evidence), frozenset(ex.context), 2)
    call = {"name": "focus_on_rows_with_highlight", "arguments": {"rows": rows}}
    return s.step(parse_turn("<tool_call>" + json.dumps(call) + "</tool_call>")).cls


def _cells(ex) -> dict[tuple[str, str], str]:
    return {(row[0], col): v for row in ex.grid[1:] for col, v in zip(ex.grid[0][1:], row[1:], strict=True)}


def test_value_pair_below_names_a_row_whose_call_is_useless():
    """The distractor variant (issue 40): the evidence is the row below the named one, so a call
    built from the question's words runs and is useless, and the useful call names a row that
    only the image shows."""
    cfg = WorldConfig(templates=["value_pair_below"], in_dist={"table_rows": [5, 6], "table_cols": [5, 6]})
    for i in range(30):
        ex = generate_example(cfg, "train", i).example
        named = ex.question.split('"')[1]
        rows = [row[0] for row in ex.grid[1:]]
        (r, a), (r2, b) = (e.split("/") for e in ex.evidence)
        assert r == r2 == rows[rows.index(named) + 1] and f'"{r}"' not in ex.question
        assert ex.answer == _cells(ex)[(r, a)] + _cells(ex)[(r, b)] and ex.valid_paths
        assert _row_call(ex, [named]) == CallClass.VALID_USELESS
        assert _row_call(ex, [r]) == CallClass.VALID_USEFUL
        decoy = ex.meta["decoy"]  # the named row, as a demonstrator that takes it for the row meant reads it
        assert decoy["evidence"] == [f"{named}/{a}", f"{named}/{b}"] and decoy["paths"]
        assert decoy["answer"] == _cells(ex)[(named, a)] + _cells(ex)[(named, b)]


def test_value_pair_later_makes_one_of_two_named_rows_the_useful_call():
    """The named-distractor variant (issue 40): both rows are in the question, in either order;
    the one later in the alphabet holds the evidence, and a call on the other runs and is useless."""
    cfg = WorldConfig(templates=["value_pair_later"], in_dist={"table_rows": [5, 6], "table_cols": [5, 6]})
    first_is_later = set()
    for i in range(30):
        ex = generate_example(cfg, "train", i).example
        named = ex.question.split('"')[1:4:2]  # the two row names, in the question's order
        (r, a), (r2, b) = (e.split("/") for e in ex.evidence)
        assert r == r2 == max(named) and len(set(named)) == 2 and ex.meta["template"] == "value_pair_later"
        assert ex.answer == _cells(ex)[(r, a)] + _cells(ex)[(r, b)] and ex.valid_paths
        assert _row_call(ex, [min(named)]) == CallClass.VALID_USELESS
        assert _row_call(ex, [r]) == CallClass.VALID_USEFUL
        first_is_later.add(named[0] == r)
        decoy = ex.meta["decoy"]
        assert decoy["evidence"] == [f"{min(named)}/{a}", f"{min(named)}/{b}"] and decoy["paths"]
        assert decoy["rationale"] == f"{min(named)}: {_cells(ex)[(min(named), a)]}, {_cells(ex)[(min(named), b)]}"
    assert first_is_later == {True, False}  # the position of a name does not give the answer's row away


def test_a_call_on_the_named_distractor_is_a_decoy_call():
    """`ToolSession.decoy`: a valid call that singles out the distractor row is a decoy call (the
    distractor grid's measure); the useful call and a call on a third row are not."""
    cfg = WorldConfig(templates=["value_pair_later"], in_dist={"table_rows": [5, 6], "table_cols": [5, 6]})
    for i in range(20):
        ex = generate_example(cfg, "train", i).example
        named = ex.question.split('"')[1:4:2]
        other = next(row[0] for row in ex.grid[1:] if row[0] not in named)

        def first_call(rows, ex=ex):
            s = ToolSession(None, ex.layout, frozenset(ex.evidence), frozenset(ex.context), 2,
                            decoy=frozenset(ex.meta["decoy"]["evidence"]))  # fmt: skip
            call = {"name": "focus_on_rows_with_highlight", "arguments": {"rows": rows}}
            return s.step(parse_turn("<tool_call>" + json.dumps(call) + "</tool_call>"))

        decoy, useful, third = first_call([min(named)]), first_call([max(named)]), first_call([other])
        assert (decoy.cls, decoy.decoy) == (CallClass.VALID_USELESS, True)
        assert (useful.cls, useful.decoy) == (CallClass.VALID_USEFUL, False)
        assert (third.cls, third.decoy) == (CallClass.VALID_USELESS, False)
