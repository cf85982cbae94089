"""The glyph world's pixel art: palettes, 7x7 sprites, a 5x7 font and the portrait layout.

Everything the renderer draws and the parser matches is defined here, as data, so a change to
any sprite changes the template bank's hash (and with it the ``glyph`` judge's identity).

Sprites are ASCII art: ``.`` is background, every other character is a colour from
``SPRITE_INK`` (``#`` is the object's own colour for shapes and symbols). A sprite is 7x7 and
sits at the top-left of its 8x8 cell, so neighbouring objects keep a one-pixel gap.
"""

from __future__ import annotations

from collections.abc import Mapping

RGB = tuple[int, int, int]

WHITE: RGB = (255, 255, 255)
#: The six shape colours, chosen far apart (closest pairs: orange/yellow and red/orange,
#: about 100 apart).
PALETTE: Mapping[str, RGB] = {
    "red": (225, 20, 30),
    "green": (20, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (245, 220, 0),
    "purple": (140, 40, 190),
    "orange": (250, 120, 0),
}
#: Symbols are black unless a colour is asked for.
SYMBOL_INK: RGB = (20, 20, 20)

SHAPE_ART: Mapping[str, str] = {
    "circle": """
..###..
.#####.
#######
#######
#######
.#####.
..###..""",
    "square": """
#######
#######
#######
#######
#######
#######
#######""",
    "triangle": """
...#...
..###..
..###..
.#####.
.#####.
#######
#######""",
    "star": """
...#...
...#...
#######
.#####.
..###..
.##.##.
##...##""",
    "heart": """
.##.##.
#######
#######
#######
.#####.
..###..
...#...""",
    "cross": """
##...##
###.###
.#####.
..###..
.#####.
###.###
##...##""",
    "diamond": """
...#...
..###..
.#####.
#######
.#####.
..###..
...#...""",
    "ring": """
..###..
.#####.
##...##
##...##
##...##
.#####.
..###..""",
}

#: Fixed colours of the fruit and flower sprites (a fruit's colours are part of its kind).
SPRITE_INK: Mapping[str, RGB] = {
    "r": (215, 30, 40),     # apple / strawberry red
    "R": (140, 0, 35),      # rose dark red
    "g": (40, 150, 50),     # leaf green
    "n": (110, 65, 25),     # stem brown
    "y": (245, 220, 0),     # yellow
    "v": (95, 35, 125),     # grape dark
    "V": (165, 100, 200),   # grape light
    "o": (250, 120, 0),     # orange
    "k": (250, 180, 130),   # peach
    "c": (215, 105, 85),    # peach crease
    "p": (245, 130, 180),   # carnation pink
    "P": (215, 40, 115),    # tulip deep pink
    "w": (150, 130, 230),   # daisy petals (lavender: white petals would vanish on white)
}

FRUIT_ART: Mapping[str, str] = {
    "apple": """
...n...
...ng..
.rr.rr.
rrrrrrr
rrrrrrr
.rrrrr.
..r.r..""",
    "banana": """
......n
.....yy
....yyy
...yyy.
.yyyy..
yyyy...
n......""",
    "grape": """
...g...
.vVvVv.
.VvVvV.
.vVvVv.
..VvV..
...v...
.......""",
    "orange": """
...gg..
..ooo..
.ooooo.
.ooooo.
.ooooo.
..ooo..
.......""",
    "peach": """
....g..
.kkckk.
kkkckkk
kkkkkkk
kkkkkkk
.kkkkk.
..kkk..""",
    "strawberry": """
.g.g.g.
.ggggg.
rryrryr
rrrrrrr
.ryrry.
..rrr..
...r...""",
}

FLOWER_ART: Mapping[str, str] = {
    "tulip": """
.P.P.P.
.PPPPP.
.PPPPP.
..PPP..
...g...
.g.g.g.
..ggg..""",
    "daisy": """
..w.w..
.wwwww.
wwwywww
.wwwww.
..w.w..
...g...
..gg...""",
    "lily": """
...o...
o..o..o
.ooooo.
..ono..
.ooooo.
o..g..o
...g...""",
    "sunflower": """
.y.y.y.
.ynnny.
yynnnyy
.ynnny.
.y.y.y.
...g...
..gg...""",
    "carnation": """
p.p.p.p
.ppppp.
pppPppp
.ppppp.
...g...
..gg...
...g...""",
    "rose": """
.rrrr..
rRRRRr.
rRrrRr.
rRRrRr.
.rrrr..
..gg...
...g...""",
}

#: A 5x7 font drawn for this project (7 rows of 5, top to bottom); it sits in columns 1-5 of
#: the 7x7 sprite box.
FONT: Mapping[str, str] = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .###.",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "$": "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "@": ".###. #...# #.### #.#.# #.### #.... .###.",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "^": "..#.. .#.#. #...# ..... ..... ..... .....",
    "~": "..... ..... .#... #.#.# ...#. ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "[": ".###. .#... .#... .#... .#... .#... .###.",
    "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
}


def art_rows(art: str) -> list[str]:
    """The 7 rows of a sprite drawing (leading newline and blank lines dropped)."""
    rows = [line for line in art.splitlines() if line.strip()]
    if len(rows) != 7 or any(len(r) != 7 for r in rows):
        raise ValueError(f"sprite art must be 7x7, got {[len(r) for r in rows]}")
    return rows


def font_rows(char: str) -> list[str]:
    """A font character as 7 rows of the 7x7 box (the 5-wide glyph in columns 1-5)."""
    rows = FONT[char].split()
    if len(rows) != 7 or any(len(r) != 5 for r in rows):
        raise ValueError(f"font character {char!r} must be 7 rows of 5")
    return ["." + r + "." for r in rows]


# --- portraits -------------------------------------------------------------------------
# A portrait fills the whole 4x4 grid on a teal backdrop (so it never reads as objects on
# white). Each attribute owns features that no other attribute touches:
#   ethnicity -> skin colour of the face (cells (1,1),(1,2),(2,1),(2,2)) and neck;
#   hair      -> colour of the hair cap (row 0), fringe and sideburns;
#   gender    -> female: long hair falling down columns 0 and 3 to the shoulders;
#   age       -> kid: narrow body and pink cheeks; young: plain; middle-aged: a forehead
#                line and a tie; old: two forehead lines, mouth wrinkles and a walking cane.

BACKDROP: RGB = (70, 140, 160)
SKIN: Mapping[str, RGB] = {
    "African/Indigenous": (100, 60, 35),
    "Caucasian": (255, 222, 200),
    "East Asian": (235, 190, 120),
    "South Asian": (185, 125, 75),
}
HAIR: Mapping[str, RGB] = {
    "black": (25, 20, 20),
    "brown": (130, 75, 25),
    "blond": (240, 200, 90),
    "red": (205, 55, 20),
    "white": (250, 250, 250),
}
EYES: RGB = (30, 25, 25)
MOUTH: RGB = (175, 40, 55)
SHIRT: RGB = (235, 235, 235)
CHEEKS: RGB = (245, 120, 150)
TIE: RGB = (180, 20, 40)
CANE: RGB = (90, 50, 20)
#: Wrinkle lines contrast with every skin: dark on light skins, light on dark ones.
WRINKLE_DARK: RGB = (90, 45, 30)
WRINKLE_LIGHT: RGB = (230, 200, 175)
