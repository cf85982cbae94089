"""The glyph world: the sandbox's drawable vocabulary (rendering and parsing: ``glyph_draw``).

Every answer in this world has exactly one canonical image, so a tiny generator can learn it
on a CPU and a deterministic judge can check it exactly.
"""

from __future__ import annotations

from .base import Thing, World, register_world

SHAPES = ("circle", "square", "triangle", "star", "heart", "cross", "diamond", "ring")
PLURAL = {"cross": "crosses"}
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
FRUITS = (("apple", "apples"), ("banana", "bananas"), ("grape", "grapes"),
          ("orange", "oranges"), ("peach", "peaches"), ("strawberry", "strawberries"))
FLOWERS = (("tulip", "tulips"), ("daisy", "daisies"), ("lily", "lilies"),
           ("sunflower", "sunflowers"), ("carnation", "carnations"), ("rose", "roses"))
PORTRAIT = {
    "ethnicity": ("African/Indigenous", "Caucasian", "East Asian", "South Asian"),
    "hair": ("black", "brown", "blond", "red", "white"),
    "age": ("kid", "young", "middle-aged", "old"),
    "gender": ("female", "male"),
}
#: Counts the generator is trained on and tasks ask for by default (the published range).
COUNTS = (1, 2, 3, 4, 5)


def glyph_world() -> World:
    return World(
        name="glyph",
        objects=tuple(Thing(s, PLURAL.get(s, s + "s"), c) for s in SHAPES for c in COLOURS),
        fruits=tuple(Thing(k, p) for k, p in FRUITS),
        flowers=tuple(Thing(k, p) for k, p in FLOWERS),
        portrait=PORTRAIT,
        description="coloured glyph shapes, fruits, flowers and portraits on a 32x32 grid",
        max_count=16,  # one object a cell of the 4x4 grid (glyph_draw.N_CELLS)
    )


register_world("glyph", glyph_world)
