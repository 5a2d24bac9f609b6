"""veRL integration: the world as a veRL dataset, our image tools as veRL native tools, and our
outcome + format reward as a veRL custom reward function.

`data` and `reward` need no veRL (they write and read veRL's formats); `tool` subclasses veRL's
`BaseTool` and imports veRL. veRL 0.9.1 pins transformers < 5.11 (we pin 5.23) and needs Ray
and vLLM/SGLang GPUs to train, so it is not a dependency: see docs/scale_out.md for what was
run and what was not.
"""

from iapo.rl.verl_adapter.data import export, tool_config, verl_row
from iapo.rl.verl_adapter.reward import compute_score

__all__ = ["compute_score", "export", "tool_config", "verl_row"]
