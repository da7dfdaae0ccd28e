import numpy as np
import pytest

from npdraw.artifacts.errors import ParamsError
from npdraw.data.splits import make_splits, proportion_count


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
    from npdraw.workflow.resolve import parse_split
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


def test_caps_shrink_the_pool_before_a_proportion_is_taken(make_cfg):
    """A cap on training images must not make two proportions train on the same images: each split takes
    its proportion of the capped pool (digit-0.5 about half of digit-1.0's images, sample-0.5 half)."""
    arrays = fake_arrays()
    capped = {split: make_splits(arrays, cfg_for(make_cfg, split=split, max_train_images=1000))
              for split in ("full", "digit-0.5", "digit-0.8", "sample-0.5", "sample-0.8")}
    sizes = {split: len(s["train"]) for split, (s, _) in capped.items()}
    assert sizes["full"] == 1000 and sizes["sample-0.5"] == 500 and sizes["sample-0.8"] == 800
    assert 350 < sizes["digit-0.5"] < 650 and sizes["digit-0.5"] < sizes["digit-0.8"] < 1000
    pool = set(capped["full"][0]["train"])
    assert all(set(s["train"]) <= pool for s, _ in capped.values())   # one pool for every split of a seed
    assert all(summary["pool"] == 1000 for _, summary in capped.values())
    assert capped["sample-0.5"][1]["train_share_of_pool"] == 0.5


@pytest.mark.parametrize("fraction, total, count", [(0.03, 50, 1), (0.1, 50, 5), (0.02, 50, 1), (0.5, 1623, 811),
                                                    (0.1, 1623, 162), (0.001, 100, 1), (0.3, 10, 3)])
def test_proportions_are_floored_counts_of_at_least_one(fraction, total, count):
    """The paper's 3 % of 50 alphabets is one alphabet (round would give two)."""
    assert proportion_count(fraction, total) == count


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
    chosen = set(summary[f"{kind}s"]["ids"])
    assert len(chosen) == summary[f"{kind}s"]["chosen"] == int(0.25 * len(np.unique(groups)))
    assert summary[f"{kind}s"]["total"] == len(np.unique(groups))
    assert set(groups[splits["train"]]) == chosen
    assert len(splits["train"]) == np.isin(groups, list(chosen)).sum()   # every image of those groups trains
    assert set(groups[splits["valid"]]).isdisjoint(chosen)  # the other groups validate ...
    assert len(splits["valid"]) == 1000                      # ... at most n_valid of their images
    other = "alphabet" if kind == "character" else "character"
    assert summary[f"{other}s"]["chosen"] == len(np.unique(arrays[f"train_{other}s"][splits["train"]]))
    check_partition(splits, 3000, 500)


def test_spread_validation_represents_every_group_in_proportion(make_cfg):
    """Omniglot is stored by alphabet: its validation set is drawn across every alphabet, the same for
    every seed and split kind that uses it."""
    arrays = fake_arrays()
    cfg = cfg_for(make_cfg, dataset="omniglot")
    a, summary = make_splits(arrays, cfg)
    groups = arrays["train_alphabets"]
    assert len(a["valid"]) == 1000 and summary["validation"] == "spread"
    assert set(groups[a["valid"]]) == set(groups)                       # every alphabet
    share = np.bincount(groups[a["valid"]]) / np.bincount(groups)
    assert np.allclose(share, 1000 / 3000, atol=0.02)
    b, _ = make_splits(arrays, cfg_for(make_cfg, dataset="omniglot", split="sample-0.5", seed=3))
    np.testing.assert_array_equal(a["valid"], b["valid"])
    check_partition(a, 3000, 500)


def test_profile_caps_are_seeded_subsets(make_cfg):
    arrays = fake_arrays()
    splits, _ = make_splits(arrays, cfg_for(make_cfg, max_train_images=50, max_valid_images=20, max_test_images=7))
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [50, 20, 7]
    assert set(splits["valid"]) <= set(range(2000, 3000))
    groups, _ = make_splits(arrays, cfg_for(make_cfg, dataset="omniglot", split="character-0.1", max_valid_images=20))
    assert len(groups["valid"]) == 20


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
