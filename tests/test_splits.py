import numpy as np
import pytest

from npdraw.data.splits import make_splits
from npdraw.runtime.config import ParamsError


def fake_arrays(n_train=3000, n_test=500, seed=0):
    rng = np.random.default_rng(seed)
    chars = np.repeat(np.arange(n_train // 15), 15)
    return {
        "train_images": np.zeros((n_train, 1, 2, 2), np.uint8),
        "test_images": np.zeros((n_test, 1, 2, 2), np.uint8),
        "train_labels": rng.integers(0, 10, n_train),
        "train_characters": chars,
        "train_alphabets": chars // 20,
    }


def cfg_for(make_cfg, dataset="mnist", split="full", seed=0, **data):
    cfg = make_cfg(dataset=dataset, profile="paper", data={"max_train_images": None, "max_valid_images": None,
                                          "max_test_images": None, **data})
    cfg["split"], cfg["seed"] = split, seed
    from npdraw.runtime.config import parse_split
    cfg["split_kind"], cfg["split_fraction"] = parse_split(split)
    return cfg


def check_partition(splits, n_train, n_test):
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    assert len(np.intersect1d(train, valid)) == 0
    assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)  # stored order, no repeats
    assert train.max() < n_train and valid.max() < n_train
    np.testing.assert_array_equal(test, np.arange(n_test))


def test_full_split_is_complete_and_validation_is_the_tail(make_cfg):
    arrays = fake_arrays()
    splits, summary = make_splits(arrays, cfg_for(make_cfg))
    check_partition(splits, 3000, 500)
    np.testing.assert_array_equal(splits["valid"], np.arange(2000, 3000))
    np.testing.assert_array_equal(np.concatenate([splits["train"], splits["valid"]]), np.arange(3000))
    assert summary["counts"] == {"train": 2000, "valid": 1000, "test": 500}


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.8])
def test_digit_split_membership(make_cfg, fraction):
    arrays = fake_arrays()
    splits, summary = make_splits(arrays, cfg_for(make_cfg, split=f"digit-{fraction}"))
    digits = set(range(int(round(fraction * 10))))
    assert set(arrays["train_labels"][splits["train"]]) == digits
    assert set(arrays["train_labels"][splits["valid"]]) <= digits
    expected = np.flatnonzero(np.isin(arrays["train_labels"][:2000], list(digits)))
    np.testing.assert_array_equal(splits["train"], expected)  # every image of those digits
    check_partition(splits, 3000, 500)


def test_sample_split_fraction_and_determinism(make_cfg):
    arrays = fake_arrays()
    a, _ = make_splits(arrays, cfg_for(make_cfg, split="sample-0.05", seed=1))
    b, _ = make_splits(arrays, cfg_for(make_cfg, split="sample-0.05", seed=1))
    c, _ = make_splits(arrays, cfg_for(make_cfg, split="sample-0.05", seed=2))
    assert len(a["train"]) == 100 and set(a["train"]) <= set(range(2000))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train"], c["train"])


@pytest.mark.parametrize("kind", ["character", "alphabet"])
def test_omniglot_group_splits(make_cfg, kind):
    arrays = fake_arrays()
    splits, summary = make_splits(arrays, cfg_for(make_cfg, dataset="omniglot", split=f"{kind}-0.25"))
    groups = arrays[f"train_{kind}s"]
    chosen = set(summary[f"{kind}s_chosen"])
    assert len(chosen) == round(0.25 * len(np.unique(groups)))
    assert set(groups[splits["train"]]) == chosen
    assert set(groups[splits["valid"]]).isdisjoint(chosen)  # the other groups validate
    assert len(splits["train"]) + len(splits["valid"]) == 3000
    check_partition(splits, 3000, 500)


def test_profile_caps_are_seeded_subsets(make_cfg):
    arrays = fake_arrays()
    splits, _ = make_splits(arrays, cfg_for(make_cfg, max_train_images=50, max_valid_images=20, max_test_images=7))
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [50, 20, 7]
    assert set(splits["valid"]) <= set(range(2000, 3000))


def test_capped_test_set_is_the_same_for_every_split_and_seed(make_cfg):
    """Runs of a dataset and profile are scored on the same test images (low-data curves compare them)."""
    arrays = fake_arrays()
    tests = [make_splits(arrays, cfg_for(make_cfg, split=split, seed=seed, max_test_images=7))[0]["test"]
             for split in ("full", "sample-0.1", "digit-0.3") for seed in (0, 1, 2)]
    assert all(np.array_equal(t, tests[0]) for t in tests) and len(set(tests[0])) == 7
    trains = [make_splits(arrays, cfg_for(make_cfg, split="sample-0.1", seed=s))[0]["train"] for s in (0, 1)]
    assert not np.array_equal(*trains)   # while the training subset does follow the seed


def test_too_large_validation_is_refused(make_cfg):
    cfg = cfg_for(make_cfg)
    with pytest.raises(ParamsError, match="n_valid"):
        make_splits(fake_arrays(n_train=900), cfg)
