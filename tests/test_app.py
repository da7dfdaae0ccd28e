"""The trained model in use: the Python API on the committed reference model, the `npdraw` command as a
person types it, and the editor's web API and page (the page in headless Chromium)."""

import base64
import io
import json
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

import npdraw
from npdraw.app.editor import create_app
from npdraw.artifacts.errors import CheckpointError, DataError
from tests.browser import chromium, require_chromium
from tests.conftest import REPO, needs_mirror

MNIST = needs_mirror("mnist")   # the tests that read test images from the data mirror; the rest need none


@pytest.fixture(scope="module")
def model():
    return npdraw.load()


@pytest.fixture(scope="module")
def digits():
    from npdraw.data.prepare import load_source

    arrays, _ = load_source("mnist_idx", {"source": "mnist_idx", "image_size": 28, "channels": 1}, "mnist",
                            allow_download=False)
    return np.array(arrays["test_images"][:4])


@MNIST
def test_the_readme_example(model, digits):
    """The README's example, as written there: load, sample, encode, decode, score."""
    drawn = model.sample(8, seed=0)
    assert drawn["images"].shape == (8, 1, 28, 28) and set(np.unique(drawn["images"])) <= {0.0, 1.0}
    assert drawn["canvases"].shape == (8, 1, 28, 28) and drawn["z_id"].shape == (8, 36)
    latents = model.encode(digits)
    means = model.decode(latents)["images"]
    assert means.shape == (4, 1, 28, 28) and ((means >= 0) & (means <= 1)).all()
    np.testing.assert_allclose(model.decode(canvas=latents["canvases"])["means"], means)
    nll = model.log_likelihood(digits)
    assert nll.shape == (4,) and (40 < nll).all() and (nll < 200).all()
    # each image's number is its own: the same image scored alone or among others
    assert model.log_likelihood(digits[2:3])[0] == nll[2]


@MNIST
def test_the_bound_is_the_pipelines_and_decoding_a_parse_reconstructs(model, digits):
    """The API's NLL is the evaluation's importance-sampled bound (it rises as S falls, on average), and
    the heuristic parse's canvas is the bank's parts pasted where the parse says."""
    few, many = model.log_likelihood(digits, samples=2), model.log_likelihood(digits, samples=100)
    assert many.mean() < few.mean()
    parsed = model.parse(digits)
    x = digits.astype(np.float32) / 255
    assert np.abs(parsed["canvases"] - x).mean() < np.abs(x).mean()   # closer to the image than a blank
    assert np.isfinite(model.prior_log_prob(parsed)).all()


def test_bad_input_to_the_api_is_named(model, tmp_path):
    with pytest.raises(DataError, match=r"shape \(2, 1, 32, 32\); this model takes 28x28 images with 1 channel"):
        model.log_likelihood(np.zeros((2, 1, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"latents\['z_id'\]: 73 out of range: expected 0 to 49 \(this bank has 50"):
        model.decode({"z_id": np.full((1, 36), 73), "z_loc": np.arange(36)[None], "z_is": np.ones((1, 36), bool)})
    with pytest.raises(CheckpointError, match="a prior checkpoint; this needs a trained model of one of the systems"):
        prior = tmp_path / "prior.pt"
        import torch
        torch.save({"kind": "prior", "arch": {}, "grid": {}, "state_dict": {}}, prior)
        npdraw.load(prior)


def npdraw_cli(*args, cwd):
    return subprocess.run([str(REPO / ".venv/bin/npdraw") if (REPO / ".venv/bin/npdraw").exists() else "npdraw",
                           *map(str, args)], cwd=cwd, capture_output=True, text=True)


@MNIST
@pytest.mark.slow
def test_the_command_as_a_person_types_it(digits, tmp_path):
    """sample, parse, edit and score on the committed model, PNG and NPZ in and out; a bad image, an
    image of another colour and a checkpoint of another kind end with one error line and exit 2."""
    for i, digit in enumerate(digits[:2]):
        Image.fromarray(digit[0]).save(tmp_path / f"d{i}.png")
    np.savez(tmp_path / "more.npz", images=digits)
    assert "--region" in npdraw_cli("edit", "--help", cwd=tmp_path).stdout
    out = npdraw_cli("sample", "-n", "4", "--out", "s.npz", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert np.load(tmp_path / "s.npz")["images"].shape == (4, 1, 28, 28)
    for cmd in (["parse", "d0.png", "d1.png", "--out", "p.png"], ["edit", "d0.png", "d1.png", "--region", "0:28,14:28",
                                                                 "--out", "e.png"], ["sample", "--out", "s.png"]):
        out = npdraw_cli(*cmd, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert Image.open(tmp_path / cmd[cmd.index("--out") + 1]).size[0] > 100
    out = npdraw_cli("score", "d0.png", "more.npz", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 5 and lines[0].startswith("d0.png\t")
    assert lines[0].split("\t")[1] == lines[1].split("\t")[1]      # d0.png is more.npz[0]: the same number
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "rgb.png")
    (tmp_path / "notes.png").write_text("not an image")
    for args, said in ((["score", "rgb.png"], "rgb.png: an image of mode RGB (colour); this model takes 28x28 grey"),
                       (["score", "notes.png"], "notes.png: not an image PIL can read"),
                       (["score", "d0.png", "--model", REPO / "results/reference/mnist/metrics/eval.json"],
                        "eval.json: damaged (not a whole zip archive"),
                       (["edit", "d0.png", "d1.png", "--region", "0:40,0:5"], "--region '0:40,0:5': expected 0 <= r0"),
                       (["sample", "--out", "s.gif"], "s.gif: expected a .png")):
        out = npdraw_cli(*args, cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and said in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def editor(model, digits):
    return create_app(model, digits).test_client()


def decode_uri(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("L"), float) / 255


@MNIST
def test_the_editors_api(editor):
    """Start empty, place a part: the decoded image changes around the cell and little far from it; the
    prior scores the edit; bad requests get 400 and a message, and the server goes on."""
    info = editor.get("/api/info").get_json()
    assert (info["n"], info["cells"], info["parts"], len(info["bank"])) == (6, 36, 50, 50)
    empty = editor.get("/api/start?source=empty").get_json()
    cells = empty["cells"]
    assert cells == [-1] * 36 and empty["drawn"] == 0
    cells[14] = int(np.argmax([decode_uri(u).mean() for u in info["bank"]]))   # the brightest part
    placed = editor.post("/api/render", json={"cells": cells}).get_json()
    assert placed["drawn"] == 1 and placed["log_prior"] != empty["log_prior"]
    change = np.abs(decode_uri(placed["decoded"]) - decode_uri(empty["decoded"]))
    scale = info["scale"]
    near, far = local_change(change, 14, info, scale)
    assert near > 0.02 and far < near / 4, (near, far)
    for bad, said in (({"cells": cells[:3]}, "expected a list of 36 entries"),
                      ({"cells": [73] + cells[1:]}, "cell 0: part 73 out of range: this bank has 50 parts"),
                      ({"cells": ["x"] + cells[1:]}, "cell 0: part 'x' out of range"), ({}, "expected a JSON body")):
        reply = editor.post("/api/render", json=bad)
        assert reply.status_code == 400 and said in reply.get_json()["error"]
    assert editor.get("/api/start?source=test&index=999").status_code == 400
    assert editor.get("/api/start?source=nonsense").status_code == 400
    started = editor.get("/api/start?source=test&index=1").get_json()
    assert started["drawn"] > 5 and "test image 1" in started["note"]
    png = editor.post("/api/png", json={"cells": cells})
    assert png.status_code == 200   # two 28-pixel tiles with 2-pixel gaps, x 6:
    assert Image.open(io.BytesIO(png.data)).size == (372, 192)


def local_change(change: np.ndarray, cell: int, info: dict, scale: int) -> tuple[float, float]:
    """Mean change of the decoded image within 4 pixels of the cell, and farther than 10 pixels from it
    (image pixels; `change` is at `scale` screen pixels per image pixel)."""
    change = change[::scale, ::scale]
    row, col = divmod(cell, info["n"])
    top, left = row * info["patch"] - info["pad"][0], col * info["patch"] - info["pad"][0]
    r, c = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    dist = np.maximum(np.maximum(top - r, r - (top + info["patch"] - 1)),
                      np.maximum(left - c, c - (left + info["patch"] - 1))).clip(min=0)
    return float(change[dist <= 4].mean()), float(change[dist > 10].mean())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@MNIST
@pytest.mark.slow
def test_the_editor_in_the_browser(model, digits):
    """In Chromium: the page loads (grid, bank, decoded image), a click on a part and an empty cell changes
    the decoded image where the part went and little far from it, the log-probability moves, a part out
    of range sent to the server is refused with its message shown, and Save gives the PNG."""
    require_chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), create_app(model, digits))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with chromium() as driver:
            driver.get(f"http://127.0.0.1:{server.server_port}/")
            WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready"))
            assert len(driver.find_elements(By.CSS_SELECTOR, "#grid div")) == 36
            assert len(driver.find_elements(By.CSS_SELECTOR, "#bank img")) == 50
            before = driver.find_element(By.ID, "decoded").get_attribute("src")
            status = driver.find_element(By.ID, "status").text
            info = json.loads(driver.execute_script("return JSON.stringify(info)"))
            brightest = int(np.argmax([decode_uri(u).mean() for u in info["bank"]]))
            driver.find_element(By.CSS_SELECTOR, f'#bank img[data-part="{brightest}"]').click()
            driver.find_element(By.CSS_SELECTOR, '#grid div[data-cell="14"]').click()
            WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "decoded").get_attribute("src") != before)
            after = driver.find_element(By.ID, "decoded").get_attribute("src")
            near, far = local_change(np.abs(decode_uri(after) - decode_uri(before)), 14, info, info["scale"])
            assert near > 0.02 and far < near / 4, (near, far)
            WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "status").text != status)
            assert "1 of 36 cells drawn" in driver.find_element(By.ID, "status").text
            assert "filled" in driver.find_element(By.CSS_SELECTOR, '#grid div[data-cell="14"]').get_attribute("class")
            driver.execute_script("selected = 73; edit(3);")   # what a broken page could send
            WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "error").text)
            assert "part 73 out of range" in driver.find_element(By.ID, "error").text
            WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "save").get_attribute("href")
                                            .startswith("data:image/png"))
            saved = driver.find_element(By.ID, "save").get_attribute("href")
            assert Image.open(io.BytesIO(base64.b64decode(saved.split(",", 1)[1]))).size[0] > 300
    finally:
        server.shutdown()


def test_the_python_api_is_torch_free_to_import():
    """`import npdraw` (the torch-free core under other Pythons) does not import torch; npdraw.load does."""
    out = subprocess.run([sys.executable, "-c", "import sys, npdraw; print('torch' in sys.modules)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "False"


@MNIST
def test_the_readme_python_example_runs_as_written(capsys):
    """The README's Python block, extracted and run as it stands."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- readme-example -->\n```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.count("[") == 3   # NP-DRAW's NLL of 4 images and their prior log-probabilities; the VAE's NLL
