"""``vlm-local`` on tiny randomly initialised VLMs saved to a temp folder and loaded through
the real ``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained`` path.

The tokenizer, processor and chat template are built here (nothing downloads). A random model
writes gibberish, which must come out as verdict ``error`` (never ``no``); the reading of
replies is tested on scripted outputs through the same judge object.

Qwen2-VL and Qwen2.5-VL: the folder is laid out like a hub checkpoint (tokenizer, chat template,
``preprocessor_config.json``); without torchvision ``vlm-local`` loads their processor without
its video slot (``judges.local.load_without_video``), with torchvision through AutoProcessor.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from judges_loopback import CASES, scene_image
from unisandbox.judges.local import LocalVLMJudge, folder_fingerprint
from unisandbox.judges.vlm import ChatRequest, Reply
from unisandbox.records import JudgeItem, Sample
from unisandbox.testing import one_thread  # noqa: F401  (autouse)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SPECIAL = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>",
           "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
# no "score", "yes", "no", "error" or "reject": a random model cannot stumble on a verdict
WORDS = ["user", "assistant", "caption", "object", "circle", "circles", "red", "blue", "1", "2", "3", "the", "a", "of", ":", "."]
CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}"
        "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "IMAGE{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_tokenizer():
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", bos_token="<|endoftext|>")
    return fast, vocab


def build_tiny_llava(folder: Path) -> Path:
    """A LLaVA-architecture VLM (CLIP vision tower + Qwen2 language model), random weights."""
    from transformers import (
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        Qwen2Config,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    fast, vocab = tiny_tokenizer()
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 28},
                                            crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=fast, patch_size=14,
                               vision_feature_select_strategy="default", image_token="<image>",
                               chat_template=CHAT.replace("IMAGE", "<image>"),
                               num_additional_image_tokens=1)
    ids = {"bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|im_end|>"],
           "pad_token_id": vocab["<|endoftext|>"]}
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=28, patch_size=14),
        text_config=Qwen2Config(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                max_position_embeddings=2048, **ids),
        image_token_id=vocab["<image>"], vision_feature_layer=-1,
        vision_feature_select_strategy="default")
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    for key, value in ids.items():
        setattr(model.generation_config, key, value)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_qwen_vl(folder: Path, model_type: str) -> Path:
    """A Qwen2-VL or Qwen2.5-VL with random weights, laid out like a hub checkpoint.

    The folder holds what the real checkpoints hold: weights and config, the tokenizer with
    the chat template, and ``preprocessor_config.json`` naming ``Qwen2VLImageProcessor`` and
    the processor class. No processor object is built here: without torchvision transformers
    cannot build one (its video slot), and ``vlm-local`` must load the folder either way.
    """
    from transformers import Qwen2VLImageProcessor
    from transformers import models as tm

    fast, vocab = tiny_tokenizer()
    fast.chat_template = CHAT.replace("IMAGE", "<|vision_start|><|image_pad|><|vision_end|>")
    fast.save_pretrained(folder)
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56 * 4)
    ids = {"bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|im_end|>"],
           "pad_token_id": vocab["<|endoftext|>"]}
    text = {"vocab_size": len(vocab), "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            # mrope sections sum to head_dim / 2 = 8
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": [2, 2, 4]}, **ids}
    tokens = {"image_token_id": vocab["<|image_pad|>"], "video_token_id": vocab["<|video_pad|>"],
              "vision_start_token_id": vocab["<|vision_start|>"],
              "vision_end_token_id": vocab["<|vision_end|>"]}
    # weights 5x the usual spread: replies then depend on the image and on every position,
    # so a padding or position bug changes them
    grid = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "initializer_range": 0.1}
    text["initializer_range"] = 0.1
    if model_type == "qwen2_vl":
        config = tm.qwen2_vl.Qwen2VLConfig(
            text_config=text, vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 64,
                                             "num_heads": 2, "mlp_ratio": 2, **grid},
            **tokens, **ids)
        model_class, processor_class = tm.qwen2_vl.Qwen2VLForConditionalGeneration, "Qwen2VLProcessor"
    else:
        config = tm.qwen2_5_vl.Qwen2_5_VLConfig(
            text_config=text, vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64,
                                             "num_heads": 2, "out_hidden_size": 64,
                                             "window_size": 56, "fullatt_block_indexes": [1],
                                             **grid},
            **tokens, **ids)
        model_class = tm.qwen2_5_vl.Qwen2_5_VLForConditionalGeneration
        processor_class = "Qwen2_5_VLProcessor"
    image_processor.save_pretrained(folder)
    preprocessor = folder / "preprocessor_config.json"  # as in the hub checkpoints
    preprocessor.write_text(json.dumps({**json.loads(preprocessor.read_text()),
                                        "processor_class": processor_class}, indent=2))
    torch.manual_seed(0)
    model = model_class(config)
    for key, value in ids.items():
        setattr(model.generation_config, key, value)
    # a random model would mostly write image and video pads (dropped when decoding) or end at
    # once: it may write only words and, after two of them, the end of a turn, so its replies
    # are text the judge must read
    model.generation_config.suppress_tokens = [vocab[t] for t in SPECIAL if t != "<|im_end|>"]
    model.generation_config.min_new_tokens = 2
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llava_folder(tmp_path_factory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def scene_items(folder: Path, family: str = "math", sizes=((16, 16), (90, 60), (40, 120))) -> list[JudgeItem]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (scene, answer, expect) in enumerate(CASES[family]):
        path = folder / f"{i}.png"
        scene_image(scene).resize(sizes[i % len(sizes)]).save(path)
        out.append(JudgeItem("t", family, Sample(id=str(i), prompt="p", answer=answer,
                                                 meta={"expect": expect}), path))
    return out


def test_random_llava_loads_lazily_and_its_gibberish_is_error(llava_folder, tmp_path):
    judge = LocalVLMJudge(str(llava_folder), batch_size=4, max_new_tokens=6, device="cpu")
    ident = judge.identity()
    assert judge.model is None  # identity and construction load nothing
    assert ident["kind"] == "vlm-local" and ident["model"] == llava_folder.name
    assert ident["fingerprint"] == folder_fingerprint(llava_folder)
    items = scene_items(tmp_path / "imgs")  # 6 items of three sizes: two batches of 4 and 2
    verdicts = judge.judge(items)
    assert judge.model is not None and not judge.model.training
    assert [v.verdict for v in verdicts] == ["error"] * len(items)
    for v in verdicts:
        # the model really answered both stages; its text is kept
        assert v.raw.startswith("[stage 1]\n") and "[stage 2]\n" in v.raw
        assert "no 'Score: YES|NO'" in v.raw
    # greedy decoding: the same image gets the same reply, whatever its batch neighbours
    again = judge.judge(items[:1])
    assert again[0].raw == verdicts[0].raw
    judge.close()


def test_scripted_outputs_are_read_by_the_protocol(llava_folder, tmp_path, monkeypatch):
    judge = LocalVLMJudge(str(llava_folder), device="cpu")
    calls: list[list[ChatRequest]] = []

    def scripted(requests):
        calls.append(list(requests))
        out = []
        for r in requests:
            if r.image is not None:
                scene = {"0": "Caption: 3 circles", "1": "Caption: Error", "2": "**Caption:** 2 cups",
                         "3": "The image is unclear"}[r.image.stem]
                out.append(Reply(scene))
            elif "2 cups" in r.text:
                out.append(Reply("Both say two cups.\nScore: YES\nScore: NO"))
            else:
                out.append(Reply("hmm"))
        return out

    monkeypatch.setattr(judge, "generate", scripted)
    monkeypatch.setattr(judge, "load", lambda: None)
    items = scene_items(tmp_path / "imgs")[:4]
    verdicts = judge.judge(items)
    assert [v.verdict for v in verdicts] == ["error", "no", "yes", "error"]
    assert verdicts[1].description == "Error" and "without stage 2" in verdicts[1].raw
    assert verdicts[2].description == "2 cups"  # markdown around the label is tolerated
    assert "hmm" in verdicts[0].raw and "hmm" in verdicts[3].raw
    # batched by stage: all images first, then all text comparisons (the short-circuit skipped)
    assert [len(c) for c in calls] == [4, 3]
    assert all(r.image is not None for r in calls[0]) and all(r.image is None for r in calls[1])


def test_judges_check_loads_the_folder_and_reports_the_undecided_verdict(llava_folder, capsys):
    from unisandbox.cli.main import main

    code = main(["judges", "check", "vlm-local", "--judge-arg", f"path={llava_folder}",
                 "--judge-arg", "device=cpu", "--judge-arg", "max_new_tokens=4"])
    captured = capsys.readouterr()
    assert code == 1  # a random model answers, but says nothing a judge can use
    assert f"reachable: {llava_folder}" in captured.out and "verdict: error" in captured.out


def test_bad_folder_and_arguments_are_clear(tmp_path):
    with pytest.raises(ValueError, match=r"no config\.json"):
        LocalVLMJudge(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="dtype"):
        LocalVLMJudge(str(tmp_path), dtype="int3")
    from unisandbox.errors import UserError

    with pytest.raises(UserError, match="cannot load a VLM"):  # config.json of nothing
        LocalVLMJudge(str(tmp_path)).load()


def test_fingerprint_changes_with_the_weights(llava_folder, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(llava_folder, copy)
    assert folder_fingerprint(copy) == folder_fingerprint(llava_folder)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert folder_fingerprint(copy) != folder_fingerprint(llava_folder)


@pytest.mark.parametrize("model_type", ["qwen2_vl", "qwen2_5_vl"])
def test_random_qwen_vl_through_from_pretrained(model_type, tmp_path):
    from PIL import Image

    folder = build_tiny_qwen_vl(tmp_path / f"tiny-{model_type}", model_type)
    judge = LocalVLMJudge(str(folder), batch_size=4, max_new_tokens=6, device="cpu")
    items = scene_items(tmp_path / "imgs", sizes=((56, 56), (84, 56), (56, 112)))
    verdicts = judge.judge(items)
    assert judge.model.config.model_type == model_type
    processor = judge.processor
    assert type(processor.image_processor).__name__.startswith("Qwen2VLImageProcessor")
    if importlib.util.find_spec("torchvision") is None:  # loaded without its video slot
        assert not hasattr(processor, "video_processor")
    # a random model's text is kept, and it is never a verdict
    assert [v.verdict for v in verdicts] == ["error"] * len(items)
    assert all(v.raw.startswith("[stage 1]\n") and "[stage 2]\n" in v.raw for v in verdicts)

    requests = [ChatRequest("caption the circles", item.image_path) for item in items[:3]]
    requests.insert(1, ChatRequest("caption : red circles", None))  # text only, shorter
    # the processor expands an image to grid_t*grid_h*grid_w / merge^2 placeholders and marks
    # them in mm_token_type_ids (Qwen2.5-VL's positions depend on it)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": requests[2].text}]}],
        add_generation_prompt=True, tokenize=False)
    with Image.open(requests[2].image) as image:
        inputs = processor(text=[text], images=[image.convert("RGB")], return_tensors="pt")
    n_image = int((inputs["input_ids"] == judge.model.config.image_token_id).sum())
    merge = processor.image_processor.merge_size
    assert n_image == int(inputs["image_grid_thw"].prod()) // merge**2 == 6  # 84x56 px
    assert int(inputs["mm_token_type_ids"].sum()) == n_image
    # the judge hands generate all of it: its reply is generate's on these inputs
    with torch.inference_mode():
        direct = judge.model.generate(**inputs, max_new_tokens=6, do_sample=False)
    expected = processor.tokenizer.decode(direct[0, inputs["input_ids"].shape[1] :],
                                          skip_special_tokens=True)
    assert judge.generate([requests[2]])[0].text == expected

    # batched greedy decoding (left-padded; images of three sizes and a text-only turn) gives
    # the replies of one request at a time
    batched = judge.generate(requests)
    judge.batch_size = 1
    single = judge.generate(requests)
    assert [r.error for r in batched] == [""] * len(requests)
    assert [r.text for r in batched] == [r.text for r in single]
    assert len({r.text for r in batched}) > 1 and all(r.text for r in batched)
    judge.close()
