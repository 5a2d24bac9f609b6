"""Our image-editing tools as veRL native tools (`verl.tools.base_tool.BaseTool`).

veRL's `ToolAgentLoop` creates, executes and releases a tool instance around every single
call, so the per-trajectory state (the current edited image, the call budget, earlier calls
for the `redundant` class) lives in the trajectory's `agent_data.extra_fields`, which veRL
keeps for exactly this. A call returns the edited image (`ToolResponse(image=[...])`) or our
error message; its class (valid_useful, redundant, invalid_arguments, ...) goes to the tool
metrics veRL logs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from iapo.data.example import Example
from iapo.rollout.episode import ex_image
from iapo.tools.registry import TOOLS
from iapo.tools.session import ToolSession
from iapo.tools.syntax import Turn
from iapo.world import World

SESSION_KEY = "iapo_tool_session"


@lru_cache(maxsize=8)
def _examples(world: str, split: str) -> dict[str, Example]:
    return {ex.id: ex for ex in World(Path(world)).load(split)}


def new_session(ex: Example, max_calls: int) -> ToolSession:
    ev = frozenset(ex.evidence) if ex.evidence is not None else None
    return ToolSession(ex_image(ex), ex.layout, ev, frozenset(ex.context), max_calls)


class IAPOVisualTool(BaseTool):
    """One tool of `iapo.tools.registry` (its name comes from the schema); config: world, max_calls."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema | None):
        if tool_schema is None:
            tool_schema = OpenAIFunctionToolSchema.model_validate(TOOLS[config["name"]].schema())
        super().__init__(config, tool_schema)
        if self.name not in TOOLS:
            raise ValueError(f"tool_schema.function.name {self.name!r} is not an iapo tool: {sorted(TOOLS)}")
        self.world = str(config["world"])
        self.max_calls = int(config.get("max_calls", 3))
        self._instances: dict[str, tuple[str, str]] = {}

    async def create(
        self, instance_id: str | None = None, create_kwargs: dict | None = None, **kwargs
    ) -> tuple[str, ToolResponse]:
        ck = create_kwargs or kwargs.get("create_kwargs") or {}
        if "example_id" not in ck:
            raise ValueError(f"{self.name}: create_kwargs need example_id and split (extra_info.tools_kwargs)")
        iid = instance_id or uuid4().hex
        self._instances[iid] = (ck.get("split", "train"), ck["example_id"])
        return iid, ToolResponse()

    def session(self, instance_id: str, agent_data: Any) -> ToolSession:
        """The trajectory's session, opened at its first call."""
        store = agent_data.extra_fields if agent_data is not None else {}
        if SESSION_KEY not in store:
            split, ex_id = self._instances[instance_id]
            store[SESSION_KEY] = new_session(_examples(self.world, split)[ex_id], self.max_calls)
        return store[SESSION_KEY]

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        sess = self.session(instance_id, kwargs.get("agent_data"))
        r = sess.step(Turn("tool_call", name=self.name, arguments=parameters))
        response = ToolResponse(image=[r.image]) if r.image is not None else ToolResponse(text=r.message)
        return response, 0.0, {"call_class": r.cls.value}

    async def release(self, instance_id: str, **kwargs) -> None:
        self._instances.pop(instance_id, None)
