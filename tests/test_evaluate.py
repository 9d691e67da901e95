"""The ablation of Tables 1-2 (lesson 09, ``python -m lesson_lib evaluate``) and the demo, on a tiny
random generator/critic pair: the table's rows, its columns against independent computations, and
the provenance written with it."""
import json
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from lesson_lib.__main__ import main
from lesson_lib.checkpoints import save_checkpoint
from lesson_lib.data import toy_faces
from lesson_lib.demo import COLUMNS, demo_columns, demo_scores, save_figure
from lesson_lib.evaluate import (MASKS, PAPER_TABLES, SETTINGS, ablation, discordant, format_table, loss_rows,
                                 paired_vs_yeh, score)
from lesson_lib.inpaint import PAPER, YEH
from lesson_lib.masks import central_square, context_weights
from lesson_lib.models import Critic, Generator
from lesson_lib.poisson import harmonic_inpaint


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    return Generator(32, 4).eval(), Critic(32, 4).eval()


@pytest.fixture(scope="module")
def images():
    return toy_faces(3, seed=10_000)


def test_rows_are_the_papers():
    rows = loss_rows()
    assert list(rows)[0] == "Yeh et al. (2017)" and rows["Yeh et al. (2017)"] == YEH
    assert YEH.beta == 0 and YEH.prior == "yeh"                      # Yeh et al.: no gradient loss
    assert SETTINGS == ((0.1, 0.9, 1.0), (0.5, 0.5, 1.0), (0.1, 0.9, 0.5), (0.5, 0.5, 0.5))
    for s in SETTINGS:
        assert rows[f"Proposed {s}"].prior == "wgan" and rows[f"Yeh + gradient {s}"].prior == "yeh"
        assert (rows[f"Proposed {s}"].alpha, rows[f"Proposed {s}"].beta, rows[f"Proposed {s}"].eta) == s
    assert len(rows) == 9
    for mask_rows in PAPER_TABLES.values():                           # the stored paper tables name the same rows
        assert list(mask_rows) == list(rows)


def test_score_against_numpy(images):
    noisy = (images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    mask = central_square(32)
    s = score(noisy, images, mask)
    a = (images.numpy() + 1) * 127.5
    b = (noisy.numpy() + 1) * 127.5
    per_image = ((a - b) ** 2).reshape(3, -1).mean(1)
    assert s["mse"] == pytest.approx(per_image.mean(), rel=1e-5)
    assert s["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / per_image.mean()), rel=1e-5)
    hole = mask.numpy() == 0
    hole_mse = np.mean([((a[i] - b[i]) ** 2)[:, hole].mean() for i in range(3)])
    assert s["hole_psnr"] == pytest.approx(10 * math.log10(255 ** 2 / hole_mse), rel=1e-5)
    reference = [structural_similarity(a[i], b[i], channel_axis=0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255) for i in range(3)]
    assert s["ssim"] == pytest.approx(np.mean(reference), rel=1e-6)


def test_ablation_table(pair, images):
    calls = []

    def semantic(out):
        calls.append(out.shape)
        return {"toy_rate": (out > 0).float().mean(dim=(1, 2, 3)).tolist()}

    per_image = {}
    table = ablation(*pair, images, "central", steps=2, progress=False, semantic=semantic, per_image=per_image)
    expected = [*loss_rows(), "Proposed (0.1, 0.9, 0.5) without Poisson", "Harmonic inpainting"]
    assert sorted(table) == sorted(expected)
    assert len(calls) == len(expected) and all(c == images.shape for c in calls)
    for name, row in table.items():
        assert set(row) == {"mse", "psnr", "ssim", "hole_psnr", "toy_rate"}
        assert all(np.isfinite(v) for v in row.values())
        assert set(per_image[name]) == {"mse", "ssim", "toy_rate"}          # the semantic values kept per image
        assert np.mean(per_image[name]["toy_rate"]) == pytest.approx(row["toy_rate"], abs=1e-4)
    mask = central_square(32)
    assert table["Harmonic inpainting"]["mse"] == pytest.approx(
        score(harmonic_inpaint(images, mask).clamp(-1, 1), images, mask)["mse"], rel=1e-6)
    text = format_table(table)
    assert all(name in text for name in expected) and "toy_rate" in text.splitlines()[0]
    with pytest.raises(ValueError, match="unknown mask"):
        ablation(*pair, images, "square", steps=1)
    assert set(MASKS) == {"central", "three_squares"}


def test_evaluate_command_writes_table_with_provenance(pair, tmp_path, capsys):
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, *pair, {"dataset": "toy_faces", "iterations": 0, "seed": 0})
    out = tmp_path / "table.json"
    assert main(["evaluate", "--dataset", "toy_faces", "--mask", "three_squares", "--n", "2", "--steps", "1",
                 "--checkpoint", str(ckpt), "--no-semantic", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Harmonic inpainting" in printed and "Yeh et al. (2017)" in printed
    saved = json.loads(out.read_text())
    prov = saved["provenance"]
    assert prov["command"].startswith("python -m lesson_lib") and prov["n"] == 2 and prov["steps"] == 1
    assert prov["held_out"] == 10_000 and prov["mask"] == "three_squares" and prov["model"]["iterations"] == 0
    assert len(prov["commit"]) in (40, len("unknown")) and prov["wall_time_s"] >= 0
    assert len(saved["table"]) == 11
    assert set(saved["per_image"]) == set(saved["table"])
    for name, row in saved["table"].items():                      # the per-image values make up the row
        assert len(saved["per_image"][name]["mse"]) == 2
        assert np.mean(saved["per_image"][name]["mse"]) == pytest.approx(row["mse"], rel=1e-5)
        assert np.mean(saved["per_image"][name]["ssim"]) == pytest.approx(row["ssim"], rel=1e-5)


def test_evaluate_resumes_an_interrupted_table(pair, tmp_path, monkeypatch):
    import lesson_lib.evaluate as ev
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, *pair, {"dataset": "toy_faces", "iterations": 0, "seed": 0})
    args = ["evaluate", "--dataset", "toy_faces", "--mask", "central", "--n", "2", "--steps", "2", "--rows", "paper",
            "--checkpoint", str(ckpt), "--no-semantic"]
    whole = tmp_path / "whole.json"
    assert main([*args, "--out", str(whole)]) == 0

    searched = []
    real_search = ev.inpaint_with

    def interrupted(*a, **k):                     # the second search is interrupted
        if len(searched) == 1:
            raise KeyboardInterrupt
        searched.append(a[4])
        return real_search(*a, **k)

    part = tmp_path / "part.json"
    monkeypatch.setattr(ev, "inpaint_with", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(part), "--resume"])
    saved = json.loads(part.read_text())
    assert saved["provenance"]["partial"] is True and list(saved["table"]) == ["Yeh et al. (2017)"]

    searched.clear()
    monkeypatch.setattr(ev, "inpaint_with", lambda *a, **k: (searched.append(a[4]), real_search(*a, **k))[1])
    assert main([*args, "--out", str(part), "--resume"]) == 0
    assert searched == [PAPER]                    # only the paper's row was searched again
    resumed, expected = json.loads(part.read_text()), json.loads(whole.read_text())
    assert "partial" not in resumed["provenance"]
    first_commit = saved["provenance"]["commit"]                   # the table keeps where it was started,
    assert resumed["provenance"]["commit"] == first_commit          # and lists the runs that continued it
    assert resumed["provenance"]["resumed_at"] == [first_commit]    # (same checkout here)
    assert resumed["provenance"]["wall_time_s"] >= saved["provenance"]["wall_time_s"]
    assert list(resumed["table"]) == list(expected["table"])
    for name, row in expected["table"].items():
        assert resumed["table"][name] == pytest.approx(row, rel=1e-6), name
        assert resumed["per_image"][name]["mse"] == pytest.approx(expected["per_image"][name]["mse"], rel=1e-5)

    numbers = tmp_path / "numbers.json"                # a finished table: nothing is searched again
    searched.clear()
    assert main([*args, "--out", str(part), "--resume", "--numbers-out", str(numbers)]) == 0
    assert searched == []
    public = json.loads(numbers.read_text())
    assert "per_image" not in public and list(public["table"]) == list(resumed["table"])
    for name, row in resumed["table"].items():
        assert public["table"][name] == pytest.approx(row, rel=1e-6), name
    assert public["paired_vs_yeh"] == paired_vs_yeh(resumed["per_image"])

    with pytest.raises(SystemExit, match="different steps"):
        main([*args, "--steps", "3", "--out", str(part), "--resume"])   # the last --steps wins
    with pytest.raises(SystemExit, match="--resume needs --out"):
        main([*args, "--resume"])


def test_paired_counts_against_a_loop():
    rng = np.random.default_rng(0)
    per = {name: {"mse": rng.uniform(0, 100, 7).tolist(), "ssim": rng.uniform(0, 1, 7).tolist()}
           for name in ("Yeh et al. (2017)", "Proposed (0.1, 0.9, 0.5)", "Harmonic inpainting")}
    counts = paired_vs_yeh(per)
    assert set(counts) == {"Proposed (0.1, 0.9, 0.5)", "Harmonic inpainting"}
    for name, c in counts.items():
        a, y = np.array(per[name]["mse"]), np.array(per["Yeh et al. (2017)"]["mse"])
        assert c["lower_mse"] == int((a < y).sum())
        assert c["higher_ssim"] == int((np.array(per[name]["ssim"]) > np.array(per["Yeh et al. (2017)"]["ssim"])).sum())


def test_evaluate_rejects_celeba_without_root(pair, tmp_path):
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, *pair, {"dataset": "celeba", "iterations": 0, "seed": 0})
    with pytest.raises(SystemExit, match="--celeba-root"):
        main(["evaluate", "--dataset", "celeba", "--mask", "central", "--checkpoint", str(ckpt)])


def test_evaluate_without_a_shipped_checkpoint_names_the_available_ones():
    # no celeba pair is shipped (it is trained from the real faces, which the project never holds)
    with pytest.raises(FileNotFoundError, match=r"no shipped checkpoint 'celeba_32'.*available: \[.*house_numbers_32"):
        main(["evaluate", "--dataset", "celeba", "--mask", "central", "--celeba-root", "unused"])


def test_demo_columns_and_figure(pair, images, tmp_path):
    mask = central_square(32)
    columns = demo_columns(*pair, images, mask, steps=2)
    scores = demo_scores(columns, images, mask)
    assert tuple(columns) == COLUMNS
    known = mask.expand_as(images).bool()
    for name in ("proposed", "proposed + Poisson", "Yeh loss", "harmonic"):      # known pixels are kept
        assert torch.allclose(columns[name][known], images[known], atol=1e-5), name
    assert torch.equal(columns["input"][~known], torch.zeros(int((~known).sum())))
    assert set(scores) == {"Yeh loss", "proposed", "proposed + Poisson", "harmonic"}
    path = tmp_path / "demo.png"
    save_figure([("toy, central", columns)], path)
    assert path.stat().st_size > 1000


def test_row_sets(pair, images):
    from lesson_lib.evaluate import BALANCE_ETAS, balance_rows, paper_rows
    from lesson_lib.inpaint import PAPER
    assert paper_rows() == {"Yeh et al. (2017)": YEH, "Proposed (0.1, 0.9, 0.5)": PAPER}
    balance = balance_rows()
    assert [w.eta for n, w in balance.items() if n != "Yeh et al. (2017)"] == list(BALANCE_ETAS)
    assert 0.5 in BALANCE_ETAS and 0.25 in BALANCE_ETAS           # the paper's eta; the 64 px-rescaled one
    ring_32 = context_weights(central_square(32)).sum()
    ring_64 = context_weights(central_square(64)).sum()
    assert 0.5 * ring_32 / ring_64 == pytest.approx(0.25, abs=0.01)  # why 0.25: W's ring is ~2x longer at 64 px
    table = ablation(*pair, images[:1], "three_squares", steps=1, progress=False, rows=paper_rows())
    assert list(table) == ["Yeh et al. (2017)", "Proposed (0.1, 0.9, 0.5)",
                           "Proposed (0.1, 0.9, 0.5) without Poisson", "Harmonic inpainting"]


def test_demo_command_on_the_shipped_checkpoints(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--n", "1", "--steps", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for dataset in ("house_numbers", "toy_faces"):
        for mask in ("central", "three_squares"):
            assert f"{dataset}, {mask}" in printed
    assert "harmonic" in printed and out.stat().st_size > 1000
    with pytest.raises(SystemExit, match="--n must be"):
        main(["demo", "--n", "0"])


def test_discordant_counts_the_images_where_only_one_row_scores():
    per_image = {"a": {"digits": [1.0, 1.0, 0.0, 0.0, 1.0], "attributes": [0.5] * 5},
                 "b": {"digits": [1.0, 0.0, 1.0, 0.0, 0.0], "attributes": [0.5] * 5}, "c": {"mse": [1.0] * 5}}
    assert discordant(per_image, "a", "b", "digits") == (2, 1)       # images 2 and 5; image 3
    assert discordant(per_image, "b", "a", "digits") == (1, 2)
    with pytest.raises(ValueError, match="yes/no"):
        discordant(per_image, "a", "b", "attributes")
    with pytest.raises(KeyError, match="no per-image 'digits'"):
        discordant(per_image, "a", "c", "digits")
