"""FID / KID / precision / recall through torchmetrics with the domain extractor; the committed feature
networks and their checksums; the Inception path's refusal."""

import json

import numpy as np
import pytest
import torch

from npdraw.artifacts.errors import ArtifactError, ParamsError
from npdraw.evaluation.features import (
    DomainClassifier,
    FeatureExtractor,
    inception_extractor,
    load_classifier,
    precision_recall,
    reference_state,
    save_classifier,
    score,
)
from npdraw.training.classifier import classifier_split, train_classifier
from tests.conftest import REPO


def extractor(seed=0):
    torch.manual_seed(seed)
    return FeatureExtractor(DomainClassifier(1, 10, width=8, num_features=16))


def images(n=400, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_fid_of_a_set_with_itself_is_zero_and_a_shifted_set_is_larger():
    fe, x = extractor(), images()
    ref = reference_state(fe, x, kid_subset=100)
    same = score(fe, ref, x, kid_subset=100)
    assert abs(same["fid"]) < 1e-6 and abs(same["kid"]) < 1e-5
    shifted = score(fe, ref, (x * 0.3 + 0.6).clamp(0, 1), kid_subset=100)
    assert shifted["fid"] > 100 * max(abs(same["fid"]), 1e-9) and shifted["kid"] > same["kid"]
    other = score(fe, ref, images(seed=1), kid_subset=100)
    assert 0 < other["fid"] < shifted["fid"]  # a fresh draw from the same distribution is close


def test_statistics_do_not_depend_on_batch_size():
    fe, x, y = extractor(), images(), images(300, seed=2)
    a = score(fe, reference_state(fe, x, 100, batch_size=400), y, 100, batch_size=300)
    b = score(fe, reference_state(fe, x, 100, batch_size=33), y, 100, batch_size=7)
    assert a["fid"] == pytest.approx(b["fid"], rel=1e-6)


def test_kid_subsets_are_seeded_and_leave_the_global_generator_alone():
    fe, x, y = extractor(), images(), images(300, seed=2)
    ref = reference_state(fe, x, kid_subset=50)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = score(fe, ref, y, 50, seed=7), score(fe, ref, y, 50, seed=7)
    assert a["kid"] == b["kid"] and a["kid_std"] == b["kid_std"]
    assert score(fe, ref, y, 50, seed=8)["kid"] != a["kid"]
    assert torch.equal(torch.get_rng_state(), before)


def two_class_images():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (600,), generator=g)
    x = torch.zeros(600, 1, 28, 28, dtype=torch.uint8)
    x[labels == 0, :, :14] = 255   # class 0: top half lit
    x[labels == 1, :, 14:] = 255   # class 1: bottom half lit
    return x, labels


def trained(tmp_path, binary=False):
    x, labels = two_class_images()
    model, stats = train_classifier(x[:500], labels[:500], x[500:], labels[500:], 1, epochs=2, lr=3e-3,
                                    batch_size=50, seed=0, width=8, binary=binary)
    record = save_classifier(tmp_path / "mnist.json", model, {"labels": "labels", **stats}, "mnist")
    return model, stats, record, x


def test_domain_classifier_learns_and_roundtrips_through_its_record(tmp_path):
    model, stats, record, x = trained(tmp_path)
    assert stats["classes"] == 2 and stats["valid_accuracy"] > 0.95
    assert record["available"] and record["weights"] == "mnist.pt" and len(record["sha256"]) == 64
    again = load_classifier(tmp_path / "mnist.json")
    probe = x[:5].float() / 255
    torch.testing.assert_close(again.features(probe), model.eval().features(probe))
    # Features come scaled to unit spread over the validation images (a domain FID's unit), the logits not.
    valid = x[500:].float() / 255
    rms = model.features(valid).pow(2).mean().sqrt().item()
    assert stats["feature_scale"] > 0 and abs(rms - 1.0) < 1e-4, rms
    assert again.cfg["feature_scale"] == stats["feature_scale"]
    torch.testing.assert_close(again(probe), model.head(model.body(probe)))
    assert again.sha256 == record["sha256"] and again.labels == "labels"


def test_a_binary_dataset_trains_and_validates_on_bernoulli_draws(tmp_path):
    """The FID compares binary images: the network learns and is validated on them (all-lit halves stay lit)."""
    _, stats, _, _ = trained(tmp_path, binary=True)
    assert stats["valid_accuracy"] > 0.95


def test_weights_changed_without_their_record_are_refused(tmp_path):
    """A flipped byte (or retrained weights without a new record) never loads: the record's SHA-256 names it."""
    trained(tmp_path)
    weights = tmp_path / "mnist.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="mnist.pt: SHA-256 .* but .*mnist.json records"):
        load_classifier(tmp_path / "mnist.json")
    weights.unlink()
    with pytest.raises(ArtifactError, match="weights .* names are missing"):
        load_classifier(tmp_path / "mnist.json")


def test_a_record_of_another_dataset_or_without_its_keys_is_refused(tmp_path):
    trained(tmp_path)
    cfg = type("Cfg", (), {"dataset": "omniglot"})()
    with pytest.raises(ArtifactError, match="the feature network of 'mnist', not of this run's dataset 'omniglot'"):
        load_classifier(tmp_path / "mnist.json", cfg)
    (tmp_path / "bad.json").write_text(json.dumps({"dataset": "mnist", "available": True}))
    with pytest.raises(ArtifactError, match="holds dataset, available, weights, sha256"):
        load_classifier(tmp_path / "bad.json")


def test_every_dataset_of_params_has_a_committed_record_and_the_networks_load():
    """features/<dataset>.json for each dataset of params.yaml (the stages read it); where it says there is a
    network, its committed weights load with their checksum."""
    import yaml

    for dataset in yaml.safe_load((REPO / "params.yaml").read_text())["datasets"]:
        record = json.loads((REPO / f"features/{dataset}.json").read_text())
        assert record["dataset"] == dataset
        if record["available"]:
            net = load_classifier(REPO / f"features/{dataset}.json")
            assert net.cfg["classes"] == record["classes"] and net.sha256 == record["sha256"]
        else:
            assert record["reason"]


def test_precision_and_recall_match_the_reference_implementation():
    """Kynkaanniemi et al.'s precision and recall (k = 3) against clovaai's prdc on the same features, and the
    known cases: a set against itself is all in; a shifted set loses precision and recall together."""
    from prdc import compute_prdc

    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 8, generator=g), torch.randn(250, 8, generator=g) * 1.3 + 0.4
    ours = precision_recall(real, fake, 3)
    ref = compute_prdc(real.numpy(), fake.numpy(), 3)
    assert ours["precision"] == pytest.approx(ref["precision"]) and ours["recall"] == pytest.approx(ref["recall"])
    assert precision_recall(real, real, 3) == {"precision": 1.0, "recall": 1.0}
    far = precision_recall(real, real + 10, 3)
    assert far == {"precision": 0.0, "recall": 0.0}


def test_a_killed_classifier_training_resumes_and_ends_with_the_uninterrupted_weights(tmp_path, monkeypatch):
    from npdraw.training.loop import Run

    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (300,), generator=g)
    x = torch.randint(0, 256, (300, 1, 28, 28), generator=g, dtype=torch.uint8)
    args = (x[:240], labels[:240], x[240:], labels[240:], 1)
    kw = dict(epochs=3, lr=3e-3, batch_size=40, seed=0, width=4)
    whole, whole_stats = train_classifier(*args, **kw)

    end_epoch = Run.end_epoch

    def die_after_second_epoch(self, *a):
        end_epoch(self, *a)
        if self.state["epoch"] == 2:
            raise KeyboardInterrupt   # the process dies after writing its resume file

    monkeypatch.setattr(Run, "end_epoch", die_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(*args, **kw, resume_path=tmp_path / "resume.pt")
    monkeypatch.setattr(Run, "end_epoch", end_epoch)
    resumed_epochs = []
    monkeypatch.setattr(torch, "randperm", lambda *a, _f=torch.randperm, **k: resumed_epochs.append(1) or _f(*a, **k))
    model, stats = train_classifier(*args, **kw, resume_path=tmp_path / "resume.pt")
    assert len(resumed_epochs) == 1   # only the third epoch ran again
    assert stats == whole_stats
    for name, value in whole.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_inception_path_skips_or_refuses_clearly(tmp_path):
    assert inception_extractor(None, required=False) is None
    with pytest.raises(ParamsError, match="evaluate.inception = 'require'"):
        inception_extractor(str(tmp_path / "missing.pth"), required=True)


def test_a_dataset_without_labels_records_why_it_has_no_domain_network(tmp_path):
    record = save_classifier(tmp_path / "b.json", None, {"reason": "datasets.binarized_mnist.labels = 'none'"},
                             "binarized_mnist")
    assert load_classifier(tmp_path / "b.json") is None and not record["available"]
    assert not (tmp_path / "b.pt").exists()


def test_classifier_validation_is_a_random_draw_from_the_pooled_split():
    """The dataset's validation set (the last images, whole Omniglot alphabets) is not the classifier's:
    it validates on a seeded random draw of the same size, so every class can appear on both sides."""
    train, valid = np.arange(0, 900), np.arange(900, 1000)
    t, v = classifier_split(train, valid, seed=0)
    assert len(v) == 100 and len(t) == 900 and not set(t) & set(v)
    assert sorted(set(t) | set(v)) == list(range(1000))
    assert (v < 900).sum() > 50                      # mostly drawn from the former training images
    t2, v2 = classifier_split(train, valid, seed=0)
    assert np.array_equal(v, v2) and not np.array_equal(v, classifier_split(train, valid, seed=1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["mnist", "omniglot"])
def test_the_committed_floors_are_reproduced(dataset, tmp_path):
    """The committed metric card's floor, recomputed here from the committed network and the data mirror with
    the findings profile's sample counts: the same FID for every draw (the network is fixed, the draws are
    seeded), so a number on the findings page is comparable with one a user computes."""
    from npdraw.data.prepare import load_prepared, prepare
    from npdraw.data.splits import make_splits
    from npdraw.evaluation.features import features_record
    from npdraw.evaluation.floor import reference_statistics
    from npdraw.reporting import findings
    from npdraw.workflow.params import load_params
    from npdraw.workflow.resolve import resolve
    from tests.conftest import MIRROR

    card = findings.card(dataset, REPO)
    if card is None or not (MIRROR / dataset).exists():
        pytest.skip(f"no committed {dataset} card or no data mirror")
    params = load_params(REPO / "params.yaml")
    cfg = resolve(params, dataset=dataset, profile=findings.PROFILE)
    data = tmp_path / dataset
    prepare(dataset, dict(params["datasets"][dataset]), data, allow_download=False)
    arrays = load_prepared(data, cfg)
    test = make_splits(arrays, cfg)[0]["test"][:cfg.evaluate.fid_images]
    net = load_classifier(features_record(dataset, REPO), cfg)
    floor = reference_statistics(arrays, test, cfg, net)["real"]["domain"]
    assert floor["fids"] == pytest.approx(card["floor"]["fids"], rel=1e-6, abs=1e-9)
    assert card["network"]["sha256"] == net.sha256
