"""Every kind of input a person gives the trained model (the API, the command, the editor's endpoints), bad or
unusual: each is refused with a message naming it, never a traceback, a 500 or a result computed from invalid
input; no output path overwrites a folder; a damaged checkpoint never loads.  Property-based (Hypothesis)
where the space of inputs is large; on tiny models built here and on the committed reference model (no data
mirror needed)."""

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import npdraw
from npdraw.app.api import COUNT, REFERENCE_MODEL, SAMPLES, NoParts
from npdraw.app.cli import main as cli
from npdraw.app.editor import MAX_BODY, MAX_DEPTH, create_app, json_depth
from npdraw.app.files import read_images, write_output
from npdraw.artifacts.bounds import PORT, SEED
from npdraw.artifacts.errors import CheckpointError, DataError, NpdrawError
from npdraw.artifacts.io import atomic_path
from npdraw.models.checkpoints import save_model
from tests.test_baselines import baseline

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model():
    return npdraw.load()


@pytest.fixture(scope="module")
def client(model):
    return create_app(model, np.zeros((3, 1, 28, 28), np.uint8)).test_client()


# --- every system through npdraw.load ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vae", "draw", "pixelvae"])
def test_every_systems_checkpoint_loads_samples_scores_and_reconstructs(name, make_cfg, tmp_path):
    cfg, net = baseline(make_cfg, name)
    save_model(tmp_path / "best.pt", net, {"epoch": 1})
    m = npdraw.load(tmp_path / "best.pt")
    assert m.system.name == name and not m.parts
    drawn = m.sample(3, seed=1)
    assert drawn["images"].shape == (3, 1, 28, 28) and set(np.unique(drawn["images"])) <= {0.0, 1.0}
    assert "canvases" not in drawn
    images = np.zeros((2, 28, 28), np.uint8)
    images[:, 10:18, 8:20] = 255
    nll = m.log_likelihood(images, samples=3)
    assert nll.shape == (2,) and np.isfinite(nll).all() and (nll > 0).all()
    assert m.reconstruct(images).shape == (2, 1, 28, 28)
    for method, call in (("encode", lambda: m.encode(images)), ("decode", lambda: m.decode(canvas=images)),
                         ("parse", lambda: m.parse(images)), ("bank", lambda: m.bank),
                         ("prior_log_prob", lambda: m.prior_log_prob({}))):
        with pytest.raises(NoParts, match=f"{method}: the .* model .* draws no parts; {method} is NP-DRAW's"):
            call()


def test_the_command_samples_and_scores_a_baseline_and_says_parse_is_np_draws(make_cfg, tmp_path, capsys):
    cfg, net = baseline(make_cfg, "vae")
    save_model(tmp_path / "vae.pt", net, {"epoch": 1})
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "d.png")
    assert cli(["sample", "-n", "2", "--model", str(tmp_path / "vae.pt"), "--out", str(tmp_path / "s.png")]) == 0
    assert cli(["score", str(tmp_path / "d.png"), "--model", str(tmp_path / "vae.pt"), "--samples", "2"]) == 0
    assert cli(["reconstruct", str(tmp_path / "d.png"), "--model", str(tmp_path / "vae.pt"),
                "--out", str(tmp_path / "r.npz")]) == 0
    assert np.load(tmp_path / "r.npz")["reconstructions"].shape == (1, 1, 28, 28)
    capsys.readouterr()
    assert cli(["parse", str(tmp_path / "d.png"), "--model", str(tmp_path / "vae.pt")]) == 2
    assert "parse is NP-DRAW's" in capsys.readouterr().err


# --- output paths -----------------------------------------------------------------------------------------------

def test_a_folder_at_an_output_path_is_never_touched(tmp_path, capsys):
    keep = tmp_path / "keep.png"
    keep.mkdir()
    (keep / "mine.txt").write_text("precious")
    assert cli(["sample", "-n", "1", "--out", str(keep)]) == 2
    assert "a folder is there" in capsys.readouterr().err and (keep / "mine.txt").read_text() == "precious"
    with pytest.raises(NpdrawError, match="a folder is there"):
        write_output(keep, Image.new("L", (2, 2)), {})
    (tmp_path / "file").write_text("x")
    with pytest.raises(NpdrawError, match="its parent .*file is a file"):
        write_output(tmp_path / "file/out.png", Image.new("L", (2, 2)), {})
    with pytest.raises(NpdrawError, match="cannot be written here"):
        with atomic_path(tmp_path / ("x" * 300 + ".png")):
            pass
    assert {p.name for p in tmp_path.iterdir()} == {"keep.png", "file"}   # nothing half-written left


# --- checkpoints ------------------------------------------------------------------------------------------------

def test_a_checkpoint_with_a_flipped_byte_never_loads(tmp_path):
    data = bytearray(REFERENCE_MODEL.read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "m.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"m.pt: damaged \(member .* fails its CRC-32 check\)"):
        npdraw.load(tmp_path / "m.pt")
    (tmp_path / "cut.pt").write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(CheckpointError, match="cut.pt: damaged"):
        npdraw.load(tmp_path / "cut.pt")


# --- image files ------------------------------------------------------------------------------------------------

def test_image_files_are_read_at_their_true_depth_or_refused(tmp_path):
    level = np.full((28, 28), 40000, np.uint16)
    Image.fromarray(level).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    images, _ = read_images([tmp_path / "deep.png"], 1, 28)
    assert images.dtype == np.uint8 and int(images.max()) == round(40000 * 255 / 65535)   # not clipped to 255
    Image.fromarray(np.zeros((28, 28), np.uint8)).convert("P").save(tmp_path / "palette.png")
    with pytest.raises(DataError, match="palette.png: an image of mode P \\(a palette\\)"):
        read_images([tmp_path / "palette.png"], 1, 28)
    Image.new("LA", (28, 28)).save(tmp_path / "alpha.png")
    with pytest.raises(DataError, match="mode LA"):
        read_images([tmp_path / "alpha.png"], 1, 28)
    with pytest.raises(DataError, match="no images given"):
        read_images([], 1, 28)


def test_a_header_claiming_a_huge_image_is_refused_before_decoding(tmp_path):
    """A PNG whose header says 30,000 x 30,000: refused by its size, before a pixel is decoded."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
           + chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(DataError, match="bomb.png: its header claims a huge image .*900000000 pixels"):
        read_images([tmp_path / "bomb.png"], 1, 28)


def test_an_npz_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    np.savez(tmp_path / "ok.npz", images=np.zeros((2, 28, 28), np.uint8))
    raw = bytearray((tmp_path / "ok.npz").read_bytes())
    at = raw.index(b"(2, 28, 28)")
    raw[at:at + 11] = b"(9999999999"[:11]   # the header now declares 9,999,999,999 x 28 x ...: same length
    (tmp_path / "big.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="big.npz"):
        read_images([tmp_path / "big.npz"], 1, 28)


# --- numbers ------------------------------------------------------------------------------------------------------

def test_every_bound_is_said_once_and_checked_everywhere(model, capsys):
    for args, said in ((["sample", "-n", "1000000000"], "n 1,000,000,000: out of range; expected 1 to 100,000"),
                       (["sample", "-n", "0"], "expected 1 to 100,000"),
                       (["sample", "--seed", str(2**63)], "seed 9,223,372,036,854,775,808: out of range"),
                       (["score", "x.png", "--samples", "0"], "samples 0: out of range"),
                       (["edit", "--serve", "--port", "70000"], "port 70,000: out of range; expected 1 to 65,535"),
                       (["sample", "-n", "2.5"], "'2.5': expected a whole number")):
        with pytest.raises(SystemExit) as exit_:
            cli(args)
        assert exit_.value.code == 2 and said in capsys.readouterr().err
    with pytest.raises(DataError, match="n 1,000,000,000: out of range"):
        model.sample(10**9)
    with pytest.raises(DataError, match="samples 0: out of range"):
        model.log_likelihood(np.zeros((1, 28, 28), np.uint8), samples=0)
    with pytest.raises(DataError, match="seed True: expected a whole number"):
        model.sample(1, seed=True)
    assert (COUNT.high, SAMPLES.low, PORT.high, SEED.high) == (100_000, 1, 65535, 2**31 - 1)


def test_a_count_that_would_not_fit_in_memory_is_refused_before_allocating(model, monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 10_000_000})())
    with pytest.raises(DataError, match="sample n = 90,000: .* GiB, more than 25% of the 0.0 GiB"):
        model.sample(90_000)


# --- latents and canvases ---------------------------------------------------------------------------------------

def test_latents_and_canvases_are_checked_not_coerced(model):
    ok = {"z_id": np.zeros((1, 36), np.int64), "z_loc": np.arange(36)[None], "z_is": np.ones((1, 36), bool)}
    assert model.decode(ok)["means"].shape == (1, 1, 28, 28)
    for bad, said in (({**ok, "z_id": np.full((1, 36), 1.5)}, "values of type float64; expected whole numbers"),
                      ({**ok, "z_loc": np.arange(36)[None].repeat(2, 0)}, "batch sizes differ"),
                      ({**ok, "z_id": np.full((1, 36), 73)}, "73 out of range: expected 0 to 49")):
        with pytest.raises(DataError, match=said):
            model.decode(bad)
    for canvas, said in ((np.full((1, 1, 28, 28), np.nan), "not finite"),
                         (np.full((1, 1, 28, 28), 255.0), "divide 0-255 levels by 255"),
                         (np.zeros((1, 1, 28, 28), np.uint8), "values of type uint8")):
        with pytest.raises(DataError, match=said):
            model.decode(canvas=canvas)


image_arrays = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=30),
    elements={"allow_nan": True, "allow_infinity": True})


@FAST
@given(images=image_arrays)
def test_any_array_given_as_images_is_scored_or_refused_by_name(model, images):
    """Arbitrary shapes, dtypes and values: a DataError naming what was wrong, or a number for an image the
    model takes (and then only from values it accepts)."""
    try:
        nll = model.log_likelihood(images, samples=1)
    except DataError as err:
        assert str(err).startswith("images: ")
        return
    assert images.dtype != np.bool_ and np.isfinite(nll).all()
    assert images.shape[-2:] == (28, 28) and np.isfinite(images).all() and (images >= 0).all()


@FAST
@given(z_id=hnp.arrays(st.sampled_from([np.int64, np.float64, np.uint8]),
                       st.tuples(st.integers(0, 3), st.integers(30, 40)), elements={"allow_nan": True}),
       n_loc=st.integers(0, 3))
def test_any_latents_are_decoded_or_refused_by_name(model, z_id, n_loc):
    latents = {"z_id": z_id, "z_loc": np.zeros((n_loc, 36), np.int64), "z_is": np.ones((n_loc, 36), bool)}
    try:
        out = model.decode(latents)
    except DataError as err:
        assert str(err).startswith("latents")
        return
    assert z_id.dtype.kind in "iu" and z_id.shape == (n_loc, 36) and out["means"].shape == (n_loc, 1, 28, 28)


# --- the editor as a local server -------------------------------------------------------------------------------

def test_the_editor_answers_only_its_own_host_and_origin(client):
    assert client.get("/api/info", headers={"Host": "evil.example:8765"}).status_code == 403
    assert client.get("/api/info", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    cells = {"cells": [-1] * 36}
    refused = client.post("/api/render", json=cells, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and "Origin" in refused.get_json()["error"]
    assert client.post("/api/render", json=cells, headers={"Origin": "http://localhost"}).status_code == 200
    form = client.post("/api/render", data=json.dumps(cells), content_type="text/plain")
    assert form.status_code == 400 and "Content-Type: application/json" in form.get_json()["error"]
    info = client.get("/api/info").get_json()
    assert info["model"] == "model.pt" and "/" not in info["model"]   # no absolute path


def test_the_editor_limits_json_size_and_depth_and_answers_4xx_in_json(client):
    deep = "[" * 5000 + "]" * 5000
    reply = client.post("/api/render", data=deep, content_type="application/json")
    assert reply.status_code == 400 and f"more than {MAX_DEPTH} levels" in reply.get_json()["error"]
    big = json.dumps({"cells": [-1] * 36, "pad": "x" * MAX_BODY})
    assert client.post("/api/render", data=big, content_type="application/json").status_code == 413
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and "error" in missing.get_json()
    assert client.get("/api/start?source=sample&seed=99999999999999999999").status_code == 400
    assert client.get("/api/start?source=test&index=-1").status_code == 400
    assert json_depth(b'{"a": "[[[[[[["}') == 1   # brackets inside strings do not count


json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=4), max_leaves=60)


@FAST
@given(body=st.one_of(json_values, st.fixed_dictionaries({"cells": json_values})))
def test_any_json_to_the_editor_gets_200_or_a_4xx_with_a_message(client, body):
    for route in ("/api/render", "/api/png"):
        reply = client.post(route, data=json.dumps(body), content_type="application/json")
        assert reply.status_code == 200 or (400 <= reply.status_code < 500 and reply.get_json()["error"])


@FAST
@given(query=st.dictionaries(st.sampled_from(["source", "seed", "index"]), st.text(max_size=12), max_size=3))
def test_any_query_to_the_start_endpoint_gets_200_or_a_4xx(client, query):
    reply = client.get("/api/start", query_string=query)
    assert reply.status_code == 200 or (400 <= reply.status_code < 500 and reply.get_json()["error"])


def test_the_seed_of_the_command_and_the_api_is_the_pipelines():
    from npdraw.workflow.resolve import SEED_MAX

    assert SEED.high == SEED_MAX and torch.Generator().manual_seed(SEED.high) is not None
