"""Built-in judges: registered through the ``register_judges`` hook like any plugin's.

The judge modules import only the standard library at module level (torch and transformers
load inside ``vlm-local`` on first use), so registering them keeps the CLI fast.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..judges.local import LocalVLMJudge
from ..judges.openai import OpenAIJudge
from ..judges.selfjudge import SelfJudge
from ..specs import JudgeSpec

PLUGIN_API_VERSION = 1


@hookimpl
def register_judges(register: Callable[[JudgeSpec], None]) -> None:
    register(JudgeSpec(
        name="vlm-openai", factory=OpenAIJudge,
        description="Two-stage VLM judge over an OpenAI-compatible server (vLLM): model=, base_url=",
    ))
    register(JudgeSpec(
        name="vlm-local", factory=LocalVLMJudge,
        description="Two-stage VLM judge on a local transformers image-text-to-text folder: path=",
    ))
    register(JudgeSpec(
        name="self", factory=SelfJudge, requires={"understand"},
        description="The model under test judges its own images (STARS filter): mode=verdict "
                    "(Final Answer: YES|NO) or mode=consistency (its own answer vs its description)",
    ))
