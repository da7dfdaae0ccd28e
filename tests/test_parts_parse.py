"""Grid, rendering, Algorithm 1, PSNR and the k-medoids bank."""

import numpy as np
import pytest
import torch

from npdraw.compute import seeds
from npdraw.parts.bank import build_bank, drop_empty, kmedoids, sample_patches
from npdraw.parts.canvas import Grid, from_cells, render, to_canvas_space, to_cells
from npdraw.parts.parser import parse_cells, parse_dataset, psnr_summary, reconstruction_mse

MNIST = {"canvas_size": 28, "patch_size": 5, "channels": 1, "image_size": 28}
CIFAR = {"canvas_size": 32, "patch_size": 4, "channels": 3, "image_size": 32}
CELEBA = {"canvas_size": 32, "patch_size": 4, "channels": 3, "image_size": 64}


@pytest.mark.parametrize("ds, n, pad", [(MNIST, 6, (1, 1)), (CIFAR, 8, (0, 0)), (CELEBA, 8, (0, 0))])
def test_grid_geometry_and_cell_roundtrip(ds, n, pad):
    grid = Grid.for_dataset(ds)
    assert (grid.n, grid.cells, grid.pad) == (n, n * n, pad)
    x = torch.rand(3, ds["channels"], ds["canvas_size"], ds["canvas_size"])
    cells = to_cells(x, grid)
    assert cells.shape == (3, n * n, grid.dim)
    torch.testing.assert_close(from_cells(cells, grid), x)


def test_cells_are_raster_order_and_padding_is_centred():
    grid = Grid.for_dataset(MNIST)
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0    # top-left pixel: cell 0, inside after one pixel of padding
    x[0, 0, 0, 4] = 2.0    # still cell 0 (padded columns 1..5 -> cell 0 covers image cols 0..3)
    x[0, 0, 27, 27] = 3.0  # bottom-right pixel: last cell
    cells = to_cells(x, grid).reshape(36, 5, 5)
    assert cells[0, 1, 1] == 1.0 and cells[1, 1, 0] == 2.0 and cells[35, 3, 3] == 3.0


def test_canvas_space_downsamples_celeba():
    images = np.full((2, 3, 64, 64), 255, np.uint8)
    images[:, :, ::2, ::2] = 0
    x = to_canvas_space(images, CELEBA)
    assert x.shape == (2, 3, 32, 32)
    torch.testing.assert_close(x, torch.full_like(x, 0.75))


def random_bank(m=12, ds=MNIST, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = ds["patch_size"]
    return torch.rand(m, ds["channels"], k, k, generator=g) * 0.8 + 0.2  # distinct, away from zero


@pytest.mark.parametrize("ds", [MNIST, CIFAR])
def test_image_built_from_parts_parses_back_exactly(ds):
    grid, bank = Grid.for_dataset(ds), random_bank(ds=ds)
    b, t = 5, grid.cells
    g = torch.Generator().manual_seed(1)
    z_id = torch.randint(0, len(bank), (b, t), generator=g)
    z_is = torch.rand(b, t, generator=g) < 0.5
    z_loc = torch.arange(t).expand(b, t)
    if grid.pad != (0, 0):
        # Cells on the border lose pixels to the crop; keep only interior cells so the image holds whole parts.
        interior = torch.zeros(grid.n, grid.n, dtype=torch.bool)
        interior[1:-1, 1:-1] = True
        z_is &= interior.flatten()
    image = render(bank, z_id, z_loc, z_is, grid)
    ids, draws = parse_cells(image, bank, grid, epsilon=0.01)
    assert torch.equal(draws, z_is)
    assert torch.equal(ids[z_is], z_id[z_is])
    canvas = render(bank, ids, z_loc, draws, grid)
    assert torch.equal(canvas, image)  # MSE exactly 0


def test_threshold_semantics():
    grid = Grid.for_dataset(MNIST)
    bank = torch.zeros(2, 1, 5, 5)
    bank[0, 0, :, 2] = 1.0           # a vertical stroke
    bank[1, 0] = 1.0                 # a full block
    x = torch.zeros(3, 1, 28, 28)
    x[1, 0, 4:9, 4:9] = 0.05         # faint cell: best part is worse than drawing nothing
    x[2, 0, 4:9, 4:9] = 0.75         # strong cell: the block is close (values exact in binary)
    ids, draws = parse_cells(x, bank, grid, epsilon=0.01)
    assert not draws[0].any()                          # all-zero image: nothing drawn
    cell = 1 * 6 + 1                                   # rows/cols 4..8 of the image = padded 5..9 = cell (1, 1)
    assert not draws[1].any()
    assert draws[2, cell] and ids[2, cell] == 1 and draws[2].sum() == 1
    # cost = ||x_c - block|| - ||x_c|| = 0.25 * 5 - 0.75 * 5 = -2.5; `cost <= epsilon` is inclusive.
    assert parse_cells(x[2:], bank, grid, epsilon=-2.5)[1][0, cell]
    assert not parse_cells(x[2:], bank, grid, epsilon=-2.5001)[1][0, cell]


def test_render_takes_the_max_where_parts_share_a_cell():
    grid = Grid.for_dataset(MNIST)
    bank = torch.stack([torch.eye(5)[None], torch.eye(5).flip(1)[None]]) * torch.tensor([0.5, 1.0])[:, None, None, None]
    canvas = render(bank, torch.tensor([[0, 1]]), torch.tensor([[7, 7]]), torch.tensor([[True, True]]), grid)
    cell = to_cells(canvas, grid)[0, 7].reshape(5, 5)
    torch.testing.assert_close(cell, torch.maximum(bank[0, 0], bank[1, 0]))
    skipped = render(bank, torch.tensor([[0, 1]]), torch.tensor([[7, 7]]), torch.tensor([[True, False]]), grid)
    torch.testing.assert_close(to_cells(skipped, grid)[0, 7].reshape(5, 5), bank[0, 0])


def test_psnr_values():
    s = psnr_summary(np.array([1e-2, 1e-4]))
    assert s["psnr_db"] == pytest.approx(30.0)
    assert s["psnr_of_mean_mse_db"] == pytest.approx(-10 * np.log10(0.00505))
    assert psnr_summary(np.array([0.0]))["psnr_db"] == pytest.approx(100.0)  # floored MSE


def stroke_images(n=200, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 1, 28, 28), np.uint8)
    for i in range(n):
        r, c = rng.integers(2, 20, 2)
        img[i, 0, r:r + 8, c:c + 2] = rng.integers(150, 256)
        img[i, 0, r + 6:r + 8, c:c + 8] = 255
    return img


@pytest.mark.parametrize("method, init", [("fasterpam", "random"), ("fasterpam", "build"),
                                          ("alternate", "k-medoids++"), ("pam", "build")])
def test_kmedoids_returns_members_and_a_sane_objective(method, init):
    rng = np.random.default_rng(0)
    points = drop_empty(sample_patches(stroke_images(), {**MNIST}, 400, rng))
    medoids, stats = kmedoids(points, 8, method, init, 100, seed=3)
    assert len(set(medoids.tolist())) == 8 and medoids.max() < len(points)
    flat = points.reshape(len(points), -1)
    dist = np.linalg.norm(flat[:, None] - flat[medoids][None], axis=2).min(1)
    assert stats["objective"] == pytest.approx(dist.sum(), rel=1e-6)
    # Any set of 8 points does no better than a local optimum of the solver by much; a random set is worse.
    random_set = rng.choice(len(points), 8, replace=False)
    assert stats["objective"] < np.linalg.norm(flat[:, None] - flat[random_set][None], axis=2).min(1).sum()


def test_bank_is_deterministic_and_made_of_sampled_patches():
    images = stroke_images()
    ds = {**MNIST, "bank_size": 10}
    cfg = {"n_patches": 500, "method": "fasterpam", "init": "random", "max_iter": 100}
    a, stats = build_bank(images, ds, cfg, seed=5)
    b, _ = build_bank(images, ds, cfg, seed=5)
    c, _ = build_bank(images, ds, cfg, seed=6)
    assert a.shape == (10, 1, 5, 5) and np.array_equal(a, b) and not np.array_equal(a, c)
    patches = drop_empty(sample_patches(images, ds, 500, seeds.rng(5, "bank")))
    flat = patches.reshape(len(patches), -1)
    for part in a.reshape(10, -1):
        assert (np.abs(flat - part).sum(1) == 0).any()  # each part is one of the sampled patches
    assert (a.reshape(10, -1).max(1) > 0).all() and stats["patches_nonempty"] <= 500


def test_parse_dataset_is_deterministic_and_chunk_independent():
    images = stroke_images(50)
    ds = {**MNIST, "bank_size": 10}
    bank, _ = build_bank(images, ds, {"n_patches": 500, "method": "fasterpam", "init": "random", "max_iter": 50}, 1)
    bank = torch.from_numpy(bank)
    one = parse_dataset(images, bank, ds, 0.01, chunk=7)
    two = parse_dataset(images, bank, ds, 0.01, chunk=64)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    z_id, z_loc, z_is = one
    assert z_id.shape == (50, 36) and (z_loc == np.arange(36)).all() and z_is.any()
    mse = reconstruction_mse(images, bank, *one, ds)
    assert mse.shape == (50,) and (mse < ((images / 255.0) ** 2).reshape(50, -1).mean(1)).all()


@pytest.mark.parametrize("side, k, n, pads", [(28, 5, 6, (1, 1)), (32, 4, 8, (0, 0)), (28, 6, 5, (1, 1)),
                                              (28, 8, 4, (2, 2)), (30, 4, 8, (1, 1))])
def test_grid_geometry(side, k, n, pads):
    g = Grid(side, k, 1)
    assert (g.n, g.cells, g.pad) == (n, n * n, pads)
