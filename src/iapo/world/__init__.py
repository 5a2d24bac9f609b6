"""The offline chart/table tool-use world.

- `glyphs`: token tiles and the label vocabulary,
- `scene`: token grids, rendering, and per-token labels after tool edits,
- `layouts`: procedural tables and charts,
- `families`: question templates (one family per public test set),
- `paths`: every valid tool path of a question,
- `generate` / `dataset`: seeded splits on disk,
- `gallery`: a PNG of examples with their tool paths.
"""

from iapo.world.dataset import World, example_image, grid_after, write_world
from iapo.world.families import FAMILIES
from iapo.world.generate import WorldConfig, generate_example, render_example

__all__ = [
    "FAMILIES",
    "World",
    "WorldConfig",
    "example_image",
    "generate_example",
    "grid_after",
    "render_example",
    "write_world",
]
