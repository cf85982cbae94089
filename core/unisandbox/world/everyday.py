"""The everyday world: the published UniSandbox vocabulary (real models, VLM judges).

Objects are plain nouns ("cups", "chairs") as in the published math and mapping files; fruits,
flowers and portrait attributes are the ones the published knowledge files use. Every plural
here folds back to its singular with ``answers.singular`` (a test checks it), so text replies
naming "3 boxes" match the answer "box".
"""

from __future__ import annotations

from .base import Thing, World, register_world

#: (singular, plural) of the countable objects math and mapping prompts ask for.
OBJECTS = (
    ("apple", "apples"), ("bag", "bags"), ("ball", "balls"), ("banana", "bananas"),
    ("belt", "belts"), ("blanket", "blankets"), ("boat", "boats"), ("book", "books"),
    ("bottle", "bottles"), ("box", "boxes"), ("candle", "candles"), ("car", "cars"),
    ("cat", "cats"), ("chair", "chairs"), ("clock", "clocks"), ("crayon", "crayons"),
    ("cup", "cups"), ("dog", "dogs"), ("doll", "dolls"), ("drum", "drums"),
    ("duck", "ducks"), ("egg", "eggs"), ("fork", "forks"), ("frog", "frogs"),
    ("glove", "gloves"), ("guitar", "guitars"), ("hat", "hats"), ("key", "keys"),
    ("kite", "kites"), ("kitten", "kittens"), ("lamp", "lamps"), ("laptop", "laptops"),
    ("mug", "mugs"), ("notebook", "notebooks"), ("pen", "pens"), ("pencil", "pencils"),
    ("phone", "phones"), ("pillow", "pillows"), ("plate", "plates"), ("rabbit", "rabbits"),
    ("sandwich", "sandwiches"), ("shirt", "shirts"), ("sock", "socks"), ("spoon", "spoons"),
    ("table", "tables"), ("tiger", "tigers"), ("umbrella", "umbrellas"), ("watch", "watches"),
)
#: The published favourite fruits (answers name them in the plural, as published).
FRUITS = (("apple", "apples"), ("banana", "bananas"), ("grape", "grapes"),
          ("orange", "oranges"), ("peach", "peaches"), ("strawberry", "strawberries"),
          ("watermelon", "watermelons"))
#: The published favourite flowers.
FLOWERS = (("carnation", "carnations"), ("daisy", "daisies"), ("lily", "lilies"),
           ("orchid", "orchids"), ("rose", "roses"), ("sunflower", "sunflowers"),
           ("tulip", "tulips"))
#: The published portrait attributes (the knowledge_train corpus's values).
PORTRAIT = {
    "ethnicity": ("African/Indigenous", "Caucasian", "East Asian"),
    "hair": ("black", "blond", "brown", "red", "white"),
    "age": ("kid", "young", "middle-aged", "old"),
    "gender": ("female", "male"),
}


def everyday_world() -> World:
    return World(
        name="everyday",
        objects=tuple(Thing(k, p) for k, p in OBJECTS),
        fruits=tuple(Thing(k, p) for k, p in FRUITS),
        flowers=tuple(Thing(k, p) for k, p in FLOWERS),
        portrait=PORTRAIT,
        description="the published UniSandbox vocabulary: everyday objects, fruits, flowers, people",
    )


register_world("everyday", everyday_world)
