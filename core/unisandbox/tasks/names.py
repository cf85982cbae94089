"""Invented character names that no model has seen: syllables, checked against a word list.

A name is refused when it is an English word or a common given name (the small list below, plus
``/usr/share/dict/words`` where the system has it), one of the published characters, or hard to
read. Which split a name belongs to is decided by ``splits.split_of`` on the name, so every
split has its own characters.
"""

from __future__ import annotations

import contextlib
import functools
import random
from pathlib import Path

ONSETS = ("Ae", "Al", "Ar", "Bel", "Bra", "Cae", "Cor", "Da", "Dra", "El", "Ev", "Fa", "Fen",
          "Ga", "Gal", "Ha", "Is", "Ja", "Jo", "Kae", "Ky", "La", "Ly", "Mae", "Mi", "Ne", "Ny",
          "Or", "Pa", "Pe", "Qui", "Ra", "Ri", "Sa", "Se", "Syl", "Ta", "Tha", "Tor", "U", "Va",
          "Ve", "Xa", "Xe", "Ya", "Za", "Ze", "Zy")
MIDDLES = ("la", "ri", "ve", "ni", "dri", "lo", "sa", "ne", "xi", "ro", "the", "mi", "ra", "lu",
           "na", "vi", "ze", "do", "ty", "ca", "le", "ma", "ta", "phi", "sy", "ko")
ENDINGS = ("nax", "rix", "lia", "ssa", "lla", "nne", "us", "iel", "ora", "ys", "yn", "eth",
           "ara", "ion", "ius", "ene", "ith", "orn", "ix", "ane", "os", "wen", "dra", "ier",
           "elle", "ona", "uth", "ante", "ax")

#: The published UniSandbox characters: never reused, so a generated set is never confused
#: with (or leaks into) the published knowledge files.
PUBLISHED = frozenset({"aurelius", "evandriel", "jovianne", "kaelorix", "lysendria", "nyxella",
                       "orionax", "thalassia", "valerian", "zefyria"})

#: Words and given names that an invented name could collide with (lower case).
_WORDS = """
alabama alaska albania algeria aloe amazon america amnesia anemia anesthesia angela angelina
angelica anna annette antenna aquarius ariel aria arena argentina armada aroma astoria atlanta
aurora australia austria avalon bacteria balsa banana bandana barbara bella belladonna beretta
bermuda bianca bonanza bravo cafeteria calla camellia camera canada candela cantata capella
carmela carolina casino catalina cathedral cecilia celesta celestial celia chimera cholera
cinema clara claudia columbia comedia cordelia corona cosmos criteria cuba dahlia dakota
dalia daria delia delta diana dilemma dinosaur diploma dora dorothea drama edelweiss elena
eleanor elisa ella eliza emilia emma enigma erica estella eugenia eureka fauna felicia fiesta
flora florida gala galaxy gardenia genesis georgia geranium gloria hera hydra hysteria idea
ilia iliad india indonesia inertia iris isabella italia jamaica janina julia juliana karma
kenya korea lamina lara larissa latvia laura lavender lena leonora libra lila lilia lily
linda lisa livia lola lorena louisa lucia luna lydia lyra magnolia malaria malta mania
marina marisa martha matilda medusa melissa mesa mimosa minerva miranda mona nadia natalia
nebula nevada nigeria nina nirvana nora nova oceania odessa olivia omega opera orchestra
orion osiris pamela panacea panama pandora paranoia patina pergola persona petunia phobia
pizza plasma polka pneumonia rebecca regina rhea rosa rosalia rosetta rumba russia sabrina
saga salsa samba sandra santa sarah savanna selena serena sierra sofia sonata sonia stella
syria tanzania tequila terra tessa thelma theta tiara tundra ulna umbrella urania ursula
utopia valeria vanilla vega vera verona victoria viola virginia vista zambia zebra zelda
adonis aeolus ajax amadeus apollo aquila ares atlas augustus aurelian bacchus brutus caesar
cassius castor cerberus claudius cornelius cupid cyrus darius decimus demetrius dionysus
felix hades hector helios hercules horus icarus janus julius jupiter lazarus linus lucius
magnus marcus marius mercury morpheus neptune nero octavius orpheus pegasus perseus pluto
remus romulus rufus saturn septimus silas sirius tarquin theseus titus ulysses uranus venus
vulcan zeus aaron adrian alan albert alexander alfred andrew anthony arthur benjamin bernard
calvin carl charles christian daniel david dominic edgar edward elias elijah emil eric ethan
evan felix francis gabriel george gideon harold henry isaac ivan jacob james jason jonas
joseph julian kevin leon liam lionel lucas luke martin matthew michael nathan nicholas noah
oliver oscar owen patrick paul peter philip quentin raphael robert samuel sebastian simon
stefan theodore thomas tobias victor vincent walter william xavier zachary alina alyssa
amara amelia anya arabella ava camila cara celine chloe daphne elara eliana elise evelyn
fiona gemma hanna helena imogen ivy jasmine kaia keira kyra layla leila lorna lyla maeve
maya mila mira naomi nyla ophelia paloma priya riya rowan sage sara sela selene serafina
talia tara thalia una vanessa willa xena yara zara zoe zora aria ariana kaira nyx orin
alaric caspian cassian darian dorian evander kairos lorien lysander orion soren thaddeus
tristan zephyr zephyra valerius lucian aurelio evangeline seraphina thalassa zenobia
calypso andromeda cassiopeia persephone ariadne penelope artemis athena demeter hestia
"""


@functools.lru_cache(maxsize=1)
def dictionary() -> frozenset[str]:
    """The word list names are checked against (the built-in list, plus the system's)."""
    words = set(_WORDS.split())
    system = Path("/usr/share/dict/words")
    if system.is_file():
        with contextlib.suppress(OSError):
            words.update(w.strip().lower() for w in system.read_text(errors="ignore").split())
    return frozenset(words)


def acceptable(name: str) -> bool:
    """A readable, novel name: 5-11 letters, no doubled vowels or vowel runs, not a word or
    known name."""
    low = name.lower()
    if not (5 <= len(low) <= 11 and low.isalpha()):
        return False
    if any(low[i] == low[i + 1] and low[i] in "aeiouy" for i in range(len(low) - 1)):
        return False  # "ee", "oo": hard to read
    if any(all(ch in "aeiouy" for ch in low[i:i + 3]) for i in range(len(low) - 2)):
        return False  # three vowels in a row
    if any(low[i] == low[i + 1] == low[i + 2] for i in range(len(low) - 2)):
        return False
    return low not in PUBLISHED and low not in dictionary()


def invent_name(rng: random.Random) -> str:
    """One candidate name (check it with ``acceptable``)."""
    middle = "".join(rng.choice(MIDDLES) for _ in range(rng.choice((1, 1, 2))))
    return (rng.choice(ONSETS) + middle + rng.choice(ENDINGS)).capitalize()
