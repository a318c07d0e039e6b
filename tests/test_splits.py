import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaiseg.data.splits import assign_splits
from xaiseg.errors import InputError


def _sheet(groups, labels, splits=None):
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(len(groups))],
            "group": groups,
            "label_index": labels,
            "split": splits or [""] * len(groups),
        }
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 15), st.integers(0, 1)), min_size=1, max_size=120),
    st.integers(0, 10_000),
)
def test_groups_never_cut_and_every_row_assigned(rows, seed):
    sheet = _sheet([f"g{g}" for g, _ in rows], [label for _, label in rows])
    split = assign_splits(sheet, 0.2, 0.2, seed)
    assert split.isin(["train", "val", "test"]).all()
    assert (sheet.assign(split=split).groupby("group")["split"].nunique() == 1).all()


def test_fractions_and_stratification_on_equal_groups():
    # 40 groups of 2 samples, half of the groups positive.
    groups = [f"g{i // 2}" for i in range(80)]
    labels = [int((i // 2) % 2 == 0) for i in range(80)]
    split = assign_splits(_sheet(groups, labels), 0.25, 0.25, seed=3)
    counts = split.value_counts()
    assert counts["train"] == 40 and counts["val"] == 20 and counts["test"] == 20
    positives = pd.Series(labels)[split == "test"].sum()
    assert positives == 10  # stratified: half of test is positive


def test_seeded_and_reproducible():
    groups = [f"g{i}" for i in range(30)]
    sheet = _sheet(groups, [i % 2 for i in range(30)])
    assert assign_splits(sheet, 0.2, 0.2, 7).equals(assign_splits(sheet, 0.2, 0.2, 7))
    assert not assign_splits(sheet, 0.2, 0.2, 7).equals(assign_splits(sheet, 0.2, 0.2, 8))


def test_fixed_split_pulls_whole_group():
    sheet = _sheet(["a", "a", "b", "c"], [1, 0, 0, 1], ["test", "", "", ""])
    split = assign_splits(sheet, 0.3, 0.3, 0)
    assert list(split[:2]) == ["test", "test"]


def test_conflicting_fixed_splits_in_group():
    sheet = _sheet(["a", "a"], [1, 0], ["test", "train"])
    with pytest.raises(InputError, match="group 'a' is given several splits"):
        assign_splits(sheet, 0.3, 0.3, 0)
