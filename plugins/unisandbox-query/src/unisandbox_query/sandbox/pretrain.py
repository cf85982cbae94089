"""``sandbox-pretrain``: train the tiny query model from scratch on the sandbox corpus.

Two phases, one optimizer and one cosine schedule: ``text_steps`` of language only (a batch of
one understanding category per step, categories drawn by weight, so a batch holds sequences
of similar length; the first of them may be a ``curriculum`` of drills), then
``joint_steps`` of the flow loss on a batch of direct prompts plus a text batch. Seeded: the
same recipe gives the same checkpoint. A killed run resumes from its last saved state in
``out_dir/state``. docs/sandbox-model.md has the whole story.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from unisandbox.errors import UserError
from unisandbox.factories import check_number, is_finite
from unisandbox.progress import bar as progress_bar
from unisandbox.protocols import Trainer, TrainResult
from unisandbox.run.store import atomic_write_json, read_object
from unisandbox.training import uninterrupted
from unisandbox.world.glyph_draw import render_array

from ..model import QueryModel
from ..modeling_query_umm import QueryUMM, QueryUMMConfig, cosine_lr
from ..tokenization import build_tokenizer
from .corpus import SandboxCorpus, TextExample

CORPUS_VERSION = "6"
#: phase 1 (language only): the world's language, arithmetic, reasoning, the train characters
#: (math weighs most: multi-step arithmetic is what the LM learns slowest; mapping, which this
#: LM does not learn, little — docs/sandbox-model.md)
TEXT_WEIGHTS: Mapping[str, float] = {
    "ask": 1.0, "facts": 3.0, "math": 4.0, "mapping": 1.0, "think": 3.0, "knowledge": 1.5,
}
#: phase 2 (joint with the flow loss): seeing images, self-filtering, and replay of phase 1
#: (math kept up: its text batches cost the same as any other category's; describing at 3
#: since stop 19: two runs with the character traces in ``knowledge`` described 96.5-100 %)
JOINT_WEIGHTS: Mapping[str, float] = {
    "ask": 0.5, "facts": 1.0, "math": 3.0, "mapping": 0.5, "think": 1.5, "knowledge": 0.5,
    "describe": 3.0, "filter": 2.0,
}


def _phases(value: Any) -> tuple[str, ...]:
    """A curriculum from a tuple, a JSON list or "a:1,b:2" (as ``--train-arg`` gives it)."""
    if isinstance(value, str):
        value = _from_json("curriculum", value) if value.startswith("[") else [p for p in value.split(",") if p]
    phases = []
    for p in (str(p).strip() for p in value):
        category, _, steps = p.rpartition(":")
        if not category or not (steps.isascii() and steps.isdigit()) or int(steps) < 1:
            raise ValueError(f"curriculum phase {p!r} is not CATEGORY:STEPS with STEPS >= 1")
        phases.append(f"{category}:{int(steps)}")  # "math:0001" is "math:1": one recipe, one digest
    return tuple(phases)


def _from_json(name: str, value: Any) -> Any:
    """A ``--train-arg`` that holds JSON (a table, a list) arrives as text: parsed here, a
    malformed one named."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc.msg}): {value!r}") from None


def _weights(value: Mapping[str, Any]) -> dict[str, float]:
    """Category weights as floats, so {"math": 4} and {"math": 4.0} are one recipe (one digest)."""
    value = _from_json("category weights", value)
    if not isinstance(value, Mapping):
        raise ValueError(f"category weights must map categories to numbers, got {value!r}")
    bad = {k: v for k, v in value.items()
           if isinstance(v, bool) or not isinstance(v, int | float) or not is_finite(v) or v < 0}
    if bad:
        raise ValueError(f"category weights must be finite numbers >= 0, got {bad}")
    return {str(k): float(v) for k, v in value.items()}


def _task_scale(value: Mapping[str, Any] | str) -> dict[str, float]:
    """Per-task multipliers of ``n_train``: known reasoning tasks, positive numbers."""
    from .corpus import TASKS

    value = _from_json("task_scale", value)
    if not isinstance(value, Mapping):
        raise ValueError(f"task_scale must map task names to multipliers of n_train, got {value!r}")
    unknown = sorted(set(value) - set(TASKS))
    if unknown:
        raise ValueError(f"task_scale names unknown tasks {unknown}: choose from {', '.join(TASKS)}")
    bad = {k: v for k, v in value.items()
           if isinstance(v, bool) or not isinstance(v, int | float) or not is_finite(v) or v <= 0}
    if bad:
        raise ValueError(f"task_scale multipliers must be finite positive numbers, got {bad}")
    return {str(k): float(v) for k, v in sorted(value.items())}


#: each reasoning task's share of the train items, as multipliers of ``n_train`` (since stop
#: 25): level 1 (189 distinct expressions, learned by rote) gives its items to level 3
#: (thousands, worked out), and mapping (not learned by this LM) half its think traces to
#: math; level 2 at 2 (since stop 27; 1.2 left its reasoning the weak one) with 4,000
#: language steps took math U to 100 / 100 / 98 % and G-think to 90.5 / 88 / 87.5 % on 200
#: test items per level (stop 25's 1.2 and 3,000 steps: 100 / 92 / 95 and 96 / 76 / 88;
#: docs/sandbox-model.md)
TASK_SCALE: Mapping[str, float] = {
    "math-1": 0.6, "math-2": 2.0, "math-3": 6.0, "mapping-1": 0.4, "mapping-2": 0.4, "mapping-3": 0.4,
}


#: the recipe's scalar fields' types (annotations are strings here): a ``--train-arg`` that is
#: not one fails when the trainer is built, not thousands of steps later inside the optimizer
_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "float | None": (int, float, type(None)),
}


#: (field, low, high) of the recipe's numbers; fields in ``_ZERO_OK`` may be 0, the others with
#: low 0 must be above it (a learning rate)
_RANGES: tuple[tuple[str, float, float], ...] = (
    ("text_steps", 0, float("inf")), ("joint_steps", 0, float("inf")), ("batch_size", 1, float("inf")),
    ("text_batch_size", 1, float("inf")), ("text_tokens", 1, float("inf")), ("lr", 0, float("inf")),
    ("lm_lr", 0, float("inf")), ("curriculum_lr", 0, float("inf")), ("warmup", 0, float("inf")),
    ("text_weight", 0, float("inf")), ("seed", 0, float("inf")), ("noise_aug", 0, 1),
    ("n_train", 1, float("inf")), ("n_characters", 1, float("inf")), ("think_format_share", 0, 1),
    ("think_filler", 0, 1),
)
_ZERO_OK = frozenset({"text_steps", "joint_steps", "warmup", "text_weight", "seed", "noise_aug",
                      "think_format_share", "think_filler"})


#: field metadata of options added after a checkpoint shipped: the digest leaves them out at
#: their default, so adding an option does not orphan the checkpoints of recipes without it
LATER = {"later": True}


@attrs.frozen
class Recipe:
    """Everything that determines the pretrained checkpoint (its hash names the cache).

    Two phases share one optimizer and one learning-rate schedule: ``text_steps`` of language
    only (cheap steps that give the generator's conditioning a language to read; the first of
    them may be a ``curriculum``: "CATEGORY:STEPS" phases of one category each, in order), then
    ``joint_steps`` of flow loss on direct prompts plus a text batch per step.
    """

    text_steps: int = 4000
    joint_steps: int = 2500
    #: "CATEGORY:STEPS" phases that open the language phase, e.g. ("lookup-2:500", "copy:200");
    #: a category may be a drill (corpus.DRILLS) that the weights do not name
    curriculum: tuple[str, ...] = attrs.field(default=(), metadata=LATER, converter=_phases)
    batch_size: int = 24
    text_batch_size: int = 64  # at most; long categories get fewer sequences (token budget)
    text_tokens: int = 1200  # tokens per text batch (phase 1; phase 2 uses two thirds)
    lr: float = 2e-3
    #: peak learning rate of the understanding side (LM, vision); None: ``lr`` for all
    lm_lr: float | None = attrs.field(default=None, metadata=LATER)
    #: the curriculum's own peak rate, on a cosine over 1.5x its length, after which the run's
    #: schedule starts afresh (lookups bind only at a low rate; math learns slowly at one);
    #: None: the curriculum is simply the first steps of the run's schedule
    curriculum_lr: float | None = attrs.field(default=None, metadata=LATER)
    warmup: int = 50
    text_weight: float = 1.0
    seed: int = 0
    #: each quoted rule key one token ("'K'"; tokenization.py); measured, not adopted
    key_tokens: bool = attrs.field(default=False, metadata=LATER)
    text_weights: Mapping[str, float] = attrs.field(factory=lambda: dict(TEXT_WEIGHTS), converter=_weights)
    joint_weights: Mapping[str, float] = attrs.field(factory=lambda: dict(JOINT_WEIGHTS), converter=_weights)
    noise_aug: float = 0.15  # max pixel noise (in [-1, 1] units) on images the vision side reads
    #: train-split items per reasoning task: 600 let the LM learn level-3 math by rote (each
    #: expression seen many times), 5,000 make it work them out (docs/sandbox-model.md)
    n_train: int = 5000
    #: per-task multipliers of ``n_train`` (``TASK_SCALE``; {} gives every task ``n_train``): the
    #: share of the math, think and filter examples each level gets follows its item count
    task_scale: Mapping[str, float] = attrs.field(factory=lambda: dict(TASK_SCALE), metadata=LATER,
                                                  converter=_task_scale)
    n_characters: int = 24
    think_format_share: float = 0.3
    #: share of the generator's think-format examples with unrelated worked steps before the
    #: plan (since stop 19: the generator reads a plan after the model's own reasoning)
    think_filler: float = attrs.field(default=0.5, metadata=LATER)
    #: the train characters' think traces in ``knowledge`` rather than ``think`` (corpus.py;
    #: since stop 19: injected facts then reach the picture when the model thinks)
    traces_in_knowledge: bool = attrs.field(default=True, metadata=LATER)
    #: self-filter answers check each attribute, shown / expected, before the verdict (since
    #: stop 19; it did not make the filter compare: docs/sandbox-model.md, "Self filter")
    filter_compare: bool = attrs.field(default=True, metadata=LATER)

    @property
    def steps(self) -> int:
        return self.text_steps + self.joint_steps

    def __attrs_post_init__(self) -> None:
        for f in attrs.fields(type(self)):
            kinds, value = _SCALARS.get(f.type), getattr(self, f.name)
            if kinds and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
                raise ValueError(f"recipe field {f.name} must be {f.type}, got {value!r}")
        for name, low, high in _RANGES:  # checked here, not thousands of steps later
            value = getattr(self, name)
            if value is not None and not (is_finite(value) and low <= value <= high
                                          and (low > 0 or name in _ZERO_OK or value > 0)):
                bound = f"between {low:g} and {high:g}" if high != float("inf") else \
                    (f">= {low:g}" if name in _ZERO_OK or low > 0 else "> 0")
                raise ValueError(f"recipe field {name} must be {bound}, got {value!r}")
        if self.steps < 1:
            raise ValueError("text_steps + joint_steps must be at least 1")
        for table, phase_steps in (("text_weights", self.text_steps - sum(n for _, n in self.curriculum_steps)),
                                   ("joint_weights", self.joint_steps)):
            if phase_steps > 0 and not any(w > 0 for w in getattr(self, table).values()):
                raise ValueError(f"{table} gives every category weight 0: its phase would have nothing to train on")
        if sum(n for _, n in self.curriculum_steps) > self.text_steps:
            raise ValueError(f"the curriculum's {sum(n for _, n in self.curriculum_steps)} steps do not fit "
                             f"in text_steps={self.text_steps}")

    def rate(self, step: int, peak: float) -> float:
        """The learning rate at ``step`` of a parameter group whose peak rate is ``peak``."""
        opening = sum(n for _, n in self.curriculum_steps) if self.curriculum_lr else 0
        if step < opening:
            return self.curriculum_lr * cosine_lr(step, round(1.5 * opening), self.warmup)
        return peak * cosine_lr(step - opening, self.steps - opening, self.warmup)

    @property
    def curriculum_steps(self) -> list[tuple[str, int]]:
        return [(c, int(n)) for c, n in (p.rsplit(":", 1) for p in self.curriculum)]

    def digest(self) -> str:
        recipe = {f.name: getattr(self, f.name) for f in attrs.fields(type(self))
                  if not (f.metadata.get("later") and getattr(self, f.name) == _default(f))}
        payload = json.dumps({"recipe": recipe, "corpus": CORPUS_VERSION,
                              "config": QueryUMMConfig().to_json()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _default(field: attrs.Attribute) -> Any:
    """A field's default value, a factory's called."""
    default = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]


def build_corpus(recipe: Recipe) -> SandboxCorpus:
    return SandboxCorpus(seed=recipe.seed, n_train=recipe.n_train, task_scale=recipe.task_scale,
                         n_characters=recipe.n_characters,
                         think_format_share=recipe.think_format_share,
                         think_filler=recipe.think_filler,
                         traces_in_knowledge=recipe.traces_in_knowledge,
                         filter_compare=recipe.filter_compare)


_TOKENIZERS: dict[bool, Any] = {}


def sandbox_tokenizer(key_tokens: bool = False) -> Any:
    """The sandbox world's tokenizer: the words of a fixed corpus (600 train items per task, 24
    characters, seed 0), character names excluded.

    Fixed for the world (not per recipe, nor the default recipe's corpus size), so every recipe
    trains the same vocabulary; ``key_tokens`` (a recipe option) makes each quoted rule key one
    token.
    """
    if key_tokens not in _TOKENIZERS:
        corpus = SandboxCorpus(seed=0, n_train=600, n_characters=24)
        _TOKENIZERS[key_tokens] = build_tokenizer(corpus.all_texts(), exclude=corpus.character_names(),
                                                  key_tokens=key_tokens)
    return _TOKENIZERS[key_tokens]


def scratch_model(recipe: Recipe | None = None, config: QueryUMMConfig | None = None) -> QueryModel:
    """An untrained sandbox model (seeded by the recipe's seed)."""
    recipe = recipe or Recipe()
    tokenizer = sandbox_tokenizer(recipe.key_tokens)
    torch.manual_seed(recipe.seed)
    return QueryModel(QueryUMM(config or QueryUMMConfig(), tokenizer), source="scratch")


def _images(targets: list[Mapping[str, Any]], layouts: list[str], seeds: list[int]) -> torch.Tensor:
    arrays = np.stack([render_array(t, layout=lay, seed=s) for t, lay, s in
                       zip(targets, layouts, seeds, strict=True)])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 127.5 - 1.0


class SandboxPretrain(Trainer):
    """Pretrain the sandbox model (see the module docstring)."""

    def __init__(self, progress: bool = True, checkpoint_every: int = 250, **recipe: Any) -> None:
        known = list(inspect.signature(Recipe).parameters)
        unknown = sorted(set(recipe) - set(known))
        if unknown:
            raise ValueError(f"unknown argument {unknown[0]!r}; accepted: progress, checkpoint_every, "
                             f"{', '.join(known)}")
        check_number("checkpoint_every", checkpoint_every, whole=True, low=0)
        if not isinstance(progress, bool):
            raise ValueError(f"progress must be true or false, got {progress!r}")
        self.recipe = Recipe(**recipe)
        self.progress = progress
        self.checkpoint_every = checkpoint_every

    @staticmethod
    def signature() -> inspect.Signature:
        """The keyword arguments the trainer takes (``__init__``'s own, then every recipe
        field) with their defaults: what the CLI lists and checks."""
        own = [p for p in inspect.signature(SandboxPretrain.__init__).parameters.values()
               if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
        fields = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=_default(f))
                  for f in attrs.fields(Recipe)]
        return inspect.Signature([p.replace(kind=p.KEYWORD_ONLY) for p in own] + fields)

    def train(self, model: QueryModel, out_dir: Path) -> TrainResult:
        r = self.recipe
        umm = model.umm
        if (len(umm.tokenizer.tokenize("'k'")) == 1) != r.key_tokens:
            flag = "true" if r.key_tokens else "false"
            raise UserError(f"the recipe has key_tokens={flag}, the model's tokenizer does not split "
                            f"keys that way: start from --model-arg init=scratch --model-arg key_tokens={flag}")
        state_dir = out_dir / "state"
        finished = self._finished(out_dir)  # before the corpus is built: a rerun costs nothing
        if finished is not None:
            return finished
        self._claim(out_dir)
        _recover_state(state_dir)
        corpus = build_corpus(r)
        cats = corpus.text_examples()
        for name in {c for c, _ in r.curriculum_steps} | {*r.text_weights, *r.joint_weights}:
            if name not in cats:
                try:
                    cats[name] = corpus.drills(name, cats)
                except ValueError as exc:  # a misspelt category in the weights or the curriculum
                    raise UserError(f"sandbox-pretrain: {exc}") from None
        schedule = [c for c, n in r.curriculum_steps for _ in range(n)]  # the curriculum's steps
        phases = {}
        for phase, table in (("text", r.text_weights), ("joint", r.joint_weights)):
            names = [c for c in table if table[c] > 0 and cats.get(c)]
            phases[phase] = (names, [table[c] for c in names])
        sizes = {c: self._batch_size(umm, cats[c]) for c in cats if cats[c]}
        params = [p for p in umm.parameters() if p.requires_grad]
        understanding = {id(p) for p in umm.understanding_parameters()}
        groups = [{"params": [p for p in params if id(p) in understanding], "peak": r.lm_lr or r.lr},
                  {"params": [p for p in params if id(p) not in understanding], "peak": r.lr}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=r.lr, weight_decay=0.0,
                                      betas=(0.9, 0.98))
        rng = random.Random(f"pretrain:{r.seed}")
        generator = torch.Generator().manual_seed(r.seed)
        start, log = 0, []
        if (state_dir / "trainer_state.json").is_file():
            start, log = self._resume(umm, optimizer, rng, generator, state_dir)
        umm.train()
        t0 = time.perf_counter()
        bar = progress_bar(r.steps, "sandbox-pretrain", "step", self.progress, initial=start)
        done = saved = start  # steps whose update is in the weights; the last saved state's
        try:
            for step in range(start, r.steps):
                drawn = (rng.getstate(), generator.get_state())  # this step's draws start here
                for group in optimizer.param_groups:
                    group["lr"] = r.rate(step, group["peak"])
                joint = step >= r.text_steps
                if joint:
                    gen = [corpus.generation_example(rng) for _ in range(r.batch_size)]
                    contexts = [umm.generation_context(p, plan) for p, plan, _ in gen]
                    x0 = _images([t for _, _, t in gen], ["canonical"] * len(gen), [0] * len(gen))
                    flow = umm.flow_loss(contexts, x0.to(umm.device), generator)
                else:
                    flow = torch.zeros(())
                names, weights = phases["joint" if joint else "text"]
                category = schedule[step] if step < len(schedule) else rng.choices(names, weights)[0]
                size = sizes[category] if not joint else max(2, (2 * sizes[category]) // 3)
                batch = rng.sample(cats[category], size)
                text = self._text_loss(umm, batch, rng, generator)
                loss = flow + r.text_weight * text
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                logged = step % 25 == 0 or step == r.steps - 1
                with uninterrupted():  # an update is applied whole or not at all, with its log line
                    optimizer.step()
                    done = step + 1
                    if logged:
                        log.append({"step": step, "flow": round(flow.item(), 5), "text": round(text.item(), 4),
                                    "category": category, "seconds": round(time.perf_counter() - t0, 1)})
                if logged:
                    bar.set_postfix(flow=f"{flow.item():.4f}", text=f"{text.item():.3f}", refresh=False)
                bar.update(1)
                if self.checkpoint_every and done % self.checkpoint_every == 0 and done < r.steps:
                    self._save_state(umm, optimizer, rng, generator, state_dir, done, log)
                    saved = done
        except KeyboardInterrupt:
            # Ctrl-C (or a scheduler's SIGINT): keep the steps taken since the last state; a
            # step cut before its update is drawn again on resume, with the same draws
            if done > saved:
                if done == step:
                    rng.setstate(drawn[0])
                    generator.set_state(drawn[1])
                self._save_state(umm, optimizer, rng, generator, state_dir, done, log)
                print(f"\nsandbox-pretrain: interrupted; state saved at step {done}: run the same "
                      "command to resume", file=sys.stderr)
            raise
        bar.close()
        final = out_dir / "model"
        umm.eval()
        umm.save_pretrained(final)
        metrics = {"steps": r.steps, "seconds": round(time.perf_counter() - t0, 1),
                   "final_flow_loss": log[-1]["flow"] if log else None,
                   "final_text_loss": log[-1]["text"] if log else None, "recipe": r.digest()}
        atomic_write_json(out_dir / "pretrain_log.json", {"recipe": attrs.asdict(r), "log": log,
                                                          "metrics": metrics})
        shutil.rmtree(state_dir, ignore_errors=True)  # the resume state of a finished run
        return TrainResult(checkpoint=final, metrics=metrics)

    def _finished(self, out_dir: Path) -> TrainResult | None:
        """A folder that holds a finished pretraining: this recipe's is returned as it is (a
        rerun does nothing), another recipe's is refused (it would be overwritten)."""
        log_path = out_dir / "pretrain_log.json"
        if not log_path.is_file():
            return None
        metrics = read_object(log_path, ("metrics",))["metrics"]
        if not isinstance(metrics, dict) or not isinstance(metrics.get("recipe"), str):
            raise UserError(f"{log_path}: field 'metrics': not the log of a finished pretraining "
                            "(no recipe digest); choose another --out")
        digest = metrics["recipe"]
        if digest != self.recipe.digest():
            raise UserError(f"{out_dir} holds a finished sandbox pretraining of another recipe "
                            f"({digest}, this one is {self.recipe.digest()}); choose another --out")
        if not (out_dir / "model" / "config.json").is_file():
            raise UserError(f"{out_dir}/model is incomplete although {log_path.name} says the run "
                            "finished; choose another --out")
        print(f"sandbox-pretrain: {out_dir} already holds this recipe's model", file=sys.stderr)
        return TrainResult(checkpoint=out_dir / "model", metrics=metrics)

    def _claim(self, out_dir: Path) -> None:
        """Mark the folder as this trainer's run (``trainer.json``, as every training run has:
        the CLI refuses a run's ``--out`` inside it) and refuse one another trainer started."""
        path = out_dir / "trainer.json"
        if path.is_file():
            trainer = read_object(path).get("trainer")
            if trainer != "sandbox-pretrain":
                raise UserError(f"{out_dir} holds another training run ({path.name}: trainer "
                                f"{trainer!r}); choose another --out")
            return
        atomic_write_json(path, {"trainer": "sandbox-pretrain", "recipe": self.recipe.digest()})

    def _batch_size(self, umm: QueryUMM, examples: list[TextExample]) -> int:
        """Sequences per batch so that a batch holds about ``text_tokens`` tokens."""
        probe = examples[:: max(1, len(examples) // 50)]
        extra = umm.num_image_tokens if probe[0].image is not None else 0
        mean = sum(len(umm.tokenizer(umm.chat_text(e.user) + " " + e.answer)["input_ids"])
                   for e in probe) / len(probe) + extra
        size = max(4, min(self.recipe.text_batch_size, round(self.recipe.text_tokens / mean)))
        return min(size, len(examples))

    def _text_loss(self, umm: QueryUMM, batch: list[TextExample], rng: random.Random,
                   generator: torch.Generator) -> torch.Tensor:
        with_images = [e for e in batch if e.image is not None]
        if not with_images:
            return umm.text_loss([umm.chat_text(e.user) for e in batch], [e.answer for e in batch])
        n = umm.num_image_tokens
        pixels = _images([e.image for e in batch], [e.layout for e in batch],
                         [rng.randrange(1 << 30) for _ in batch])
        if self.recipe.noise_aug > 0:
            sigma = torch.rand(len(batch), 1, 1, 1, generator=generator) * self.recipe.noise_aug
            pixels = (pixels + sigma * torch.randn(pixels.shape, generator=generator)).clamp(-1, 1)
        prompts = [umm.chat_text(e.user, image=True, num_image_tokens=n) for e in batch]
        return umm.text_loss(prompts, [e.answer for e in batch], pixels.to(umm.device))

    # --- resumable state ---------------------------------------------------------------
    def _save_state(self, umm: QueryUMM, optimizer: torch.optim.Optimizer, rng: random.Random,
                    generator: torch.Generator, state_dir: Path, step: int, log: list) -> None:
        """The model, optimizer and counters of one step, written whole into ``state.new`` and
        swapped in: a kill at any moment leaves one complete state (``_recover_state``), never
        weights of one step beside the step counter and random state of another."""
        new, old = _sibling(state_dir, "new"), _sibling(state_dir, "old")
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir(parents=True)
        umm.save_pretrained(new / "model")
        torch.save({"optimizer": optimizer.state_dict(), "generator": generator.get_state()},
                   new / "optimizer.pt")
        atomic_write_json(new / "trainer_state.json",  # last: its presence marks the state whole
                          {"step": step, "rng": rng.getstate(), "log": log,
                           "recipe": self.recipe.digest()})
        shutil.rmtree(old, ignore_errors=True)
        if state_dir.exists():
            state_dir.rename(old)
        new.rename(state_dir)
        shutil.rmtree(old, ignore_errors=True)

    def _resume(self, umm: QueryUMM, optimizer: torch.optim.Optimizer, rng: random.Random,
                generator: torch.Generator, state_dir: Path) -> tuple[int, list]:
        state = read_object(state_dir / "trainer_state.json", ("step", "rng", "log", "recipe"))
        if state["recipe"] != self.recipe.digest():
            raise UserError(f"{state_dir} holds a run of another recipe ({state['recipe']}, this one is "
                            f"{self.recipe.digest()}); choose another --out")
        saved = QueryUMM.from_pretrained(state_dir / "model")
        umm.load_state_dict(saved.state_dict())
        blob = torch.load(state_dir / "optimizer.pt", weights_only=True)
        optimizer.load_state_dict(blob["optimizer"])
        generator.set_state(blob["generator"])
        version, internal, gauss = state["rng"]
        rng.setstate((version, tuple(internal), gauss))
        print(f"resuming sandbox-pretrain at step {state['step']}", file=sys.stderr)
        return state["step"], state["log"]


def _sibling(state_dir: Path, suffix: str) -> Path:
    return state_dir.with_name(f"{state_dir.name}.{suffix}")


def _recover_state(state_dir: Path) -> None:
    """After a kill between the two renames of ``_save_state`` no ``state`` is left: the new
    one when it was whole, else the old one, becomes it."""
    if (state_dir / "trainer_state.json").is_file():
        return
    for candidate in (_sibling(state_dir, "new"), _sibling(state_dir, "old")):
        if (candidate / "trainer_state.json").is_file():
            if state_dir.exists():  # not one this trainer left (it renames whole states): kept aside
                damaged = _sibling(state_dir, "damaged")
                shutil.rmtree(damaged, ignore_errors=True)
                state_dir.rename(damaged)
            candidate.rename(state_dir)
            return
