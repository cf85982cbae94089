"""The unified-model protocol: what the runner, judges, trainers and probes may ask of a model.

Subclass :class:`Model`, set ``capabilities`` and implement the methods those capabilities
promise; the others raise :class:`CapabilityError` naming the missing capability.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import UserError
from ..records import Conversation, Generation, GenerationRequest

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image


#: the key of ``Model.identity()`` under which a model lists the parts its generation path
#: was given to train (inert until trained, e.g. a query expert's rank): a resumed training
#: run must match them, while STARS's ``candidates_from`` ignores them (stage I draws its
#: candidates before those parts are trained, so they do not change them)
GENERATION_PARTS = "generation_parts"


#: the key of ``Model.identity()`` holding its weights' fingerprint (``paths.weights_fingerprint``)
WEIGHTS_FINGERPRINT = "weights_fingerprint"


def resume_identities(recorded: Any, current: Any) -> tuple[Any, Any]:
    """The parts of a recorded and a current model identity that a resumed run (eval, a
    trainer) must find equal. When both carry the weights' fingerprint, everything but
    ``checkpoint``, where the folder lies (a copy elsewhere, a path spelt another way, is the
    same model); when the record has none (a run written before models carried one), the
    fingerprint is left out and ``checkpoint`` still compared, as it was then."""
    if not (isinstance(recorded, dict) and isinstance(current, dict)):
        return recorded, current
    if recorded.get(WEIGHTS_FINGERPRINT) is not None and current.get(WEIGHTS_FINGERPRINT) is not None:
        drop: set[str] = {"checkpoint"}
    else:
        drop = {WEIGHTS_FINGERPRINT}
    return ({k: v for k, v in recorded.items() if k not in drop},
            {k: v for k, v in current.items() if k not in drop})


class CapabilityError(UserError):
    """A model was asked for something it did not declare, or declared what it does not
    implement (a one-line error, as a user error is: the fix is in the plugin or the command)."""


@attrs.frozen
class QueryStates:
    """Hidden states the probes read for one prompt.

    ``hidden`` is ``[layers + 1, positions, width]`` (embeddings first); ``labels`` names each
    position (``q0``..``qN`` for query tokens, ``baseline`` for the last text token before them,
    ``context`` for the last context position of a model without queries).
    """

    hidden: torch.Tensor
    labels: tuple[str, ...]
    think: str | None = None


#: the methods a model declaring each capability implements (``Model.unimplemented``)
METHODS_OF_CAPABILITY: dict[str, tuple[str, ...]] = {
    "generate": ("generate",), "understand": ("understand",), "chat": ("chat",),
    "query_states": ("query_states", "logit_lens", "vocabulary"),
    "train:understanding": ("trainable_parameters", "text_loss", "save_pretrained"),
    "train:generation": ("trainable_parameters", "generation_loss", "save_pretrained"),
    "condition": ("generation_condition",),
}


class Model:
    """Base class of every unified model (see PLUGINS.md, "register_models")."""

    capabilities: frozenset[str] = frozenset()

    def identity(self) -> dict[str, Any]:
        """What identifies this model in a run's config.json (class, checkpoint, hashes)."""
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}"}

    # --- generate / understand / chat -------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One image per request; think mode also returns the reasoning text."""
        raise self._missing("generate")

    def understand(self, images: Sequence[Image], questions: Sequence[str]) -> list[str]:
        """Answer a question about each image, greedy."""
        raise self._missing("understand")

    def chat(self, prompts: Sequence[str]) -> list[str]:
        """Answer each text prompt, greedy."""
        raise self._missing("chat")

    # --- probes ------------------------------------------------------------------------
    def query_states(self, requests: Sequence[GenerationRequest]) -> list[QueryStates]:
        """Hidden states at the query tokens (or last context position) for each request."""
        raise self._missing("query_states")

    def logit_lens(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm + LM head applied to ``hidden`` (``[..., width]``) -> probabilities."""
        raise self._missing("query_states")

    def vocabulary(self) -> dict[str, int]:
        """Token string -> id, for probes that look words up."""
        raise self._missing("query_states")

    # --- training ----------------------------------------------------------------------
    def trainable_parameters(self, part: str) -> list[torch.nn.Parameter]:
        """Parameters of ``part`` (``understanding`` or ``generation``)."""
        raise self._missing(f"train:{part}")

    def text_loss(self, conversations: Sequence[Conversation]) -> torch.Tensor:
        """Mean cross-entropy on assistant tokens (understanding side)."""
        raise self._missing("train:understanding")

    def generation_loss(
        self,
        prompts: Sequence[str],
        images: Sequence[Image],
        seed: int = 0,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean image loss (flow matching) of generating ``images`` from ``prompts``.

        ``condition`` (models with the ``condition`` capability): ``generation_condition(
        prompts)`` as the caller already computed it, with its gradients; the loss uses it
        instead of running the language model over the prompts a second time."""
        raise self._missing("train:generation")

    def generation_condition(
        self, prompts: Sequence[str], thinks: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """``[B, ...]``: what conditions the image generator for each prompt, after its
        reasoning where ``thinks`` gives one; differentiable through the generation
        parameters (STARS distils the think context's condition into the raw prompt's)."""
        raise self._missing("condition")

    def save_pretrained(self, path: str | Path) -> None:
        """Write a checkpoint folder that this model's factory can load back."""
        raise self._missing("train:generation")

    def check_implemented(self) -> None:
        """Raise the CapabilityError of the first capability this model declares but leaves to
        the base class (naming the method): found when it is built, not after a run has drawn
        every image."""
        cls = type(self)
        for cap in sorted(self.capabilities):
            for method in METHODS_OF_CAPABILITY.get(cap, ()):
                if getattr(cls, method, None) is getattr(Model, method):
                    error = self._missing(cap)
                    raise CapabilityError(f"{error} (no {method}())")

    def _missing(self, capability: str) -> CapabilityError:
        name = type(self).__name__
        if capability in self.capabilities:
            return CapabilityError(f"{name} declares {capability!r} but does not implement what it "
                                   "promises (see PLUGINS.md, \"register_models\"): implement it, or drop it "
                                   "from the model's capabilities")
        return CapabilityError(f"{name} does not provide {capability!r} "
                               f"(it declares: {', '.join(sorted(self.capabilities)) or 'nothing'})")
