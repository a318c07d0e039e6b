"""BUSI: ``<class>/<class> (k).png`` with ``<class> (k)_mask.png`` and extra ``_mask_1``.

Extra masks of one image (a second lesion) are merged into one mask file, written to
``derived_dir/merged_masks`` since the dataset folder may be read-only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from xaiseg.io.layouts.common import DERIVED, merge_masks, sample_id

IMAGE = re.compile(r"^(?P<name>.+ \((?P<k>\d+)\))\.png$")


def busi_layout(root: Path, derived_dir: Path | None = None) -> pd.DataFrame:
    derived = Path(derived_dir or root / DERIVED).resolve()
    merged_dir = derived / "merged_masks"
    rows = []
    for class_dir in sorted(
        p for p in root.iterdir() if p.is_dir() and p.resolve() not in (derived, merged_dir)
    ):
        images = [
            (int(m["k"]), p, m["name"])
            for p in class_dir.glob("*.png")
            if (m := IMAGE.match(p.name))
        ]
        for _, image, name in sorted(images):
            masks = sorted(class_dir.glob(f"{glob_escape(name)}_mask*.png"))
            mask = (
                merge_masks(masks, merged_dir / class_dir.name / f"{name}_mask.png")
                if masks
                else None
            )
            rows.append(
                {
                    "sample_id": sample_id(f"{class_dir.name}_{name}"),
                    "image": str(image.relative_to(root)),
                    "label": class_dir.name,
                    "mask": str(mask.resolve()) if mask else "",
                    "group": "",
                    "split": "",
                }
            )
    return pd.DataFrame(rows)


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)
