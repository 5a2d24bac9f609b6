"""Executing an episode's tool calls, and classifying every call.

The classes are the ground truth of "misused tool calls" (docs/method.md, the paper's Fig. 3):

- `valid_useful`: the call keeps all evidence salient and removes some non-evidence from view;
- `valid_useless`: the call runs but hides evidence, or emphasises something else instead;
- `redundant`: the call changes nothing that is salient (or repeats an earlier call);
- `invalid_arguments`, `unknown_tool`, `unparseable`: the call cannot run;
- `valid`: the call runs, but the data has no evidence annotation to judge it (real benchmarks).

Salience is computed on content units (table cells, chart values) from the same primitives the
pixels are edited with: a unit is salient if it is visible and carries the most emphasis
(highlight / outline count) among the visible units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from PIL import Image

from iapo.errors import ToolError
from iapo.tools.layout import Box, Layout, View, covers, reframe
from iapo.tools.ops import Crop, Fill, Op, Outline, Tint, ToolStyle, apply_ops, view_after
from iapo.tools.registry import TOOLS, compile_call, layout_after, validate_arguments
from iapo.tools.syntax import Turn


class CallClass(StrEnum):
    VALID_USEFUL = "valid_useful"
    VALID_USELESS = "valid_useless"
    REDUNDANT = "redundant"
    INVALID_ARGUMENTS = "invalid_arguments"
    UNKNOWN_TOOL = "unknown_tool"
    UNPARSEABLE = "unparseable"
    VALID = "valid"


MISUSE_CLASSES = (
    CallClass.VALID_USELESS,
    CallClass.REDUNDANT,
    CallClass.INVALID_ARGUMENTS,
    CallClass.UNKNOWN_TOOL,
    CallClass.UNPARSEABLE,
)


@dataclass(frozen=True)
class UnitState:
    """Which units are visible and how emphasised, in the current image's coordinates.

    Data units (cells, chart values) compete for salience; context units (row starters) only
    need to stay visible.
    """

    boxes: dict[str, Box]
    data: frozenset[str]
    visible: frozenset[str]
    emphasis: dict[str, int]

    @classmethod
    def initial(cls, layout: Layout) -> UnitState:
        data = layout.units()
        boxes = {**data, **layout.context_units()}
        return cls(boxes, frozenset(data), frozenset(boxes), dict.fromkeys(boxes, 0))

    def apply(self, ops: list[Op]) -> UnitState:
        boxes, visible, emphasis = dict(self.boxes), set(self.visible), dict(self.emphasis)
        for op in ops:
            if isinstance(op, Crop):
                new_boxes = {}
                for name, b in boxes.items():
                    r = reframe(b, op.box)
                    # a unit survives a crop only if (most of) it is inside the frame
                    if r is not None and covers(op.box, b):
                        new_boxes[name] = r
                visible &= set(new_boxes)
                boxes = new_boxes
            elif isinstance(op, Fill):
                visible -= {n for n in visible if covers(op.box, boxes[n])}
            elif isinstance(op, Tint | Outline):
                for n in boxes:
                    if covers(op.box, boxes[n]):
                        emphasis[n] += 1
        return UnitState(boxes, self.data, frozenset(visible), emphasis)

    def salient(self) -> frozenset[str]:
        shown = self.visible & self.data
        if not shown:
            return frozenset()
        top = max(self.emphasis[n] for n in shown)
        return frozenset(n for n in shown if self.emphasis[n] == top)

    def reveals(self, evidence: frozenset[str], context: frozenset[str] = frozenset()) -> bool:
        """The evidence is exactly what is salient, and the context is still in view."""
        return self.salient() == evidence and context <= self.visible


def judge(
    before: UnitState,
    after: UnitState,
    evidence: frozenset[str] | None,
    context: frozenset[str] = frozenset(),
) -> CallClass:
    """Classify a call that ran, from the salience before and after it."""
    s0, s1 = before.salient(), after.salient()
    if s0 == s1 and before.visible == after.visible:
        return CallClass.REDUNDANT
    if evidence is None:
        return CallClass.VALID
    if evidence <= s1 and context <= after.visible and len(s1 - evidence) < len(s0 - evidence):
        return CallClass.VALID_USEFUL
    return CallClass.VALID_USELESS


@dataclass
class CallResult:
    cls: CallClass
    image: Image.Image | None  # the tool output, None if the call did not run
    message: str  # text returned to the model in the tool response
    name: str | None = None
    arguments: dict | None = None
    view: View | None = None  # which part of the original image the output shows
    decoy: bool = False  # a valid-useless call that would be useful for the distractor the question names


@dataclass
class ToolSession:
    """The tool state of one episode: current image, layout, unit salience and call budget.

    Calls act on the latest image (ReFocus / VTool-R1 edit sequentially); several calls are
    allowed up to `max_calls`. With `image=None` only the layout and classes are tracked (fast
    labelling of calls, e.g. the tool-call reward model's data).
    """

    image: Image.Image | None
    layout: Layout
    evidence: frozenset[str] | None = None
    context: frozenset[str] = frozenset()
    max_calls: int = 3
    decoy: frozenset[str] | None = None  # the distractor's evidence (a row the question names in vain)
    style: ToolStyle = field(default_factory=ToolStyle)
    units: UnitState = field(init=False)
    history: list[tuple[str, str]] = field(default_factory=list, init=False)
    n_calls: int = field(default=0, init=False)
    view: View = field(default_factory=View, init=False)

    def __post_init__(self) -> None:
        self.units = UnitState.initial(self.layout)

    def step(self, turn: Turn) -> CallResult:
        """Execute (or refuse) one tool-call turn."""
        self.n_calls += 1
        if turn.kind == "unparseable":
            return CallResult(CallClass.UNPARSEABLE, None, f"error: {turn.error}")
        assert turn.kind == "tool_call" and turn.name is not None
        if self.n_calls > self.max_calls:
            return CallResult(
                CallClass.INVALID_ARGUMENTS, None, f"error: call limit of {self.max_calls} reached", turn.name
            )
        if turn.name not in TOOLS:
            return CallResult(CallClass.UNKNOWN_TOOL, None, f"error: unknown tool {turn.name[:64]!r}", turn.name)
        try:
            args = validate_arguments(turn.name, turn.arguments, self.layout)
        except ToolError as e:
            return CallResult(CallClass.INVALID_ARGUMENTS, None, f"error: {e}", turn.name)
        ops = compile_call(turn.name, args, self.layout)
        after = self.units.apply(ops)
        key = (turn.name, repr(sorted((k, sorted(v)) for k, v in args.items())))
        cls = CallClass.REDUNDANT if key in self.history else judge(self.units, after, self.evidence, self.context)
        # a useless call is a decoy call when it does for the distractor what a useful call does for the evidence
        decoy = (
            cls == CallClass.VALID_USELESS
            and self.decoy is not None
            and (judge(self.units, after, self.decoy) == CallClass.VALID_USEFUL)
        )
        self.history.append(key)
        if self.image is not None:
            self.image = apply_ops(self.image, ops, self.style)
        self.layout = layout_after(ops, self.layout)
        self.units = after
        self.view = view_after(ops, self.view)
        return CallResult(cls, self.image, "ok", turn.name, args, self.view, decoy)


def simulate(layout: Layout, calls: list[tuple[str, dict]]) -> tuple[UnitState, list[UnitState]]:
    """Unit states after each call of a valid path, without touching pixels (fast)."""
    state = UnitState.initial(layout)
    states = [state]
    for name, args in calls:
        a = validate_arguments(name, args, layout)
        ops = compile_call(name, a, layout)
        state = state.apply(ops)
        layout = layout_after(ops, layout)
        states.append(state)
    return state, states
