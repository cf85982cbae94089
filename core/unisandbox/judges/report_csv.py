"""``evaluation_results.csv`` in the original scorer's columns, so existing sheets keep working.

The published scorers write one row per item (math: ``ID, Question, Answer, Image_Path,
Result, Score, Analysis``; knowledge adds ``Caption`` before ``Result``) or one row per A/B
pair (mapping: ``ID``, then per member ``Question_X, Answer_X, Image_X_Path, X_Result,
X_Score, X_Analysis``, then ``Both_Correct, Final_Score``). ``Result`` is YES, NO, ERROR or
IMAGE_NOT_FOUND; ``Score`` is 1 only for YES (errors count as wrong there, as in the
original). Rows follow the task's sample order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..records import Sample
from ..run.store import atomic_write_bytes

CSV_NAME = "evaluation_results.csv"
ITEM_COLUMNS = ["ID", "Question", "Answer", "Image_Path", "Result", "Score", "Analysis"]
CAPTION_COLUMNS = ["ID", "Question", "Answer", "Image_Path", "Caption", "Result", "Score", "Analysis"]
_RESULT = {"yes": "YES", "no": "NO", "error": "ERROR"}


def _cells(sample: Sample, record: Mapping[str, Any] | None, root: Path) -> dict[str, Any]:
    """Question/Answer/Image_Path/Caption/Result/Score/Analysis of one judged image."""
    image = root / record["image"] if record and record.get("image") else None
    if record is None or image is None or not image.is_file():
        result, analysis = "IMAGE_NOT_FOUND", "Image file not found"
    else:
        result, analysis = _RESULT.get(record.get("verdict", ""), "ERROR"), record.get("judge_raw", "")
    return {"Question": sample.prompt, "Answer": sample.answer,
            "Image_Path": str(image.resolve()) if image else "",
            "Caption": (record or {}).get("description", ""), "Result": result,
            "Score": 1 if result == "YES" else 0, "Analysis": analysis}


def _member_letter(sample: Sample, index: int) -> str:
    """``A`` for ``17_A`` (the published ids), else A, B, C by position in the pair."""
    head, sep, tail = sample.id.rpartition("_")
    if sep and head == sample.group and tail.isalpha() and len(tail) == 1:
        return tail.upper()
    return chr(ord("A") + index)


def evaluation_rows(samples: Sequence[Sample], records: Mapping[str, Mapping[str, Any]],
                    root: Path, family: str, unit: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) for one task and mode; ``records`` maps sample id -> sample record."""
    if unit != "pair":
        columns = ITEM_COLUMNS if family == "math" else CAPTION_COLUMNS
        rows = [{"ID": s.id, **_cells(s, records.get(s.id), root)} for s in samples]
        return columns, [{k: row[k] for k in columns} for row in rows]
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group if s.group is not None else s.id, []).append(s)
    letters: list[str] = []
    rows = []
    for group, members in groups.items():
        row: dict[str, Any] = {"ID": group}
        for index, s in enumerate(members):
            x = _member_letter(s, index)
            if x not in letters:
                letters.append(x)
            cells = _cells(s, records.get(s.id), root)
            row.update({f"Question_{x}": cells["Question"], f"Answer_{x}": cells["Answer"],
                        f"Image_{x}_Path": cells["Image_Path"], f"{x}_Result": cells["Result"],
                        f"{x}_Score": cells["Score"], f"{x}_Analysis": cells["Analysis"]})
        both = all(row.get(f"{_member_letter(s, i)}_Score") == 1 for i, s in enumerate(members))
        row.update({"Both_Correct": both, "Final_Score": 1 if both else 0})
        rows.append(row)
    columns = ["ID"]
    for x in sorted(letters):
        columns += [f"Question_{x}", f"Answer_{x}", f"Image_{x}_Path", f"{x}_Result", f"{x}_Score",
                    f"{x}_Analysis"]
    return [*columns, "Both_Correct", "Final_Score"], rows


def write_evaluation_csv(path: Path, samples: Sequence[Sample],
                         records: Mapping[str, Mapping[str, Any]], root: Path, family: str,
                         unit: str) -> Path:
    """Write the CSV atomically; ``root`` is the run folder the records' image paths are in."""
    columns, rows = evaluation_rows(samples, records, root, family, unit)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
    return path
