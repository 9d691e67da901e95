"""The stored result tables in data/results/ (lesson 09): present, complete, with their provenance,
and internally consistent (a hand-edited number would break PSNR = 10 log10(255^2 / MSE))."""
import functools
import json
import math

import pytest

from lesson_lib.config import CHECKPOINT_DIR, RESULTS_DIR
from lesson_lib.evaluate import MASKS, ROW_SETS, score
from lesson_lib.metrics import mse, psnr_from_mse
from lesson_lib.poisson import harmonic_inpaint
from lesson_lib.semantic import labelled, load_scorer, semantic_scores

EMBEDDED = ("house_numbers", "toy_faces")
TABLES = sorted(RESULTS_DIR.glob("*.json"))


def test_the_ablation_of_every_dataset_and_mask_is_stored():
    names = {p.name for p in TABLES}
    missing = [f"ablation_{d}_{m}.json" for d in EMBEDDED for m in MASKS if f"ablation_{d}_{m}.json" not in names]
    assert not missing, f"missing stored tables in {RESULTS_DIR}: {missing}"


@pytest.mark.parametrize("path", TABLES, ids=[p.stem for p in TABLES])
def test_stored_table_is_complete_and_consistent(path):
    saved = json.loads(path.read_text())
    prov, table = saved["provenance"], saved["table"]
    for key in ("command", "commit", "wall_time_s", "dataset", "mask", "n", "steps", "z_seed", "held_out", "model"):
        assert key in prov, f"{path.name}: provenance lacks {key}"
    assert prov["command"].startswith("python -m lesson_lib evaluate")
    assert len(prov["commit"]) == 40
    assert not prov.get("partial"), f"{path.name} is an interrupted run: finish it with --resume"
    rows = ROW_SETS[prov.get("rows", "tables")]()
    assert set(rows) <= set(table) and "Harmonic inpainting" in table
    if path.name.startswith("ablation_"):
        assert prov["steps"] == 1000 and prov["n"] >= 32 and prov.get("rows", "tables") == "tables"
    if prov["dataset"] == "celeba":      # CelebA's licence: only the table's rows are committed, no per-image values
        assert "per_image" not in saved, f"{path.name}: strip the per-image values of CelebA results"
        paired = saved["paired_vs_yeh"]                        # what remains of them: counts
        assert set(paired) == set(table) - {"Yeh et al. (2017)"}
        assert all(0 <= c <= prov["n"] for counts in paired.values() for c in counts.values())
    else:
        assert set(saved["per_image"]) == set(table)
        for name, row in table.items():
            per = saved["per_image"][name]
            assert len(per["mse"]) == prov["n"] and sum(per["mse"]) / prov["n"] == pytest.approx(row["mse"], rel=1e-5)
            assert sum(per["ssim"]) / prov["n"] == pytest.approx(row["ssim"], rel=1e-4)
    for name, row in table.items():
        assert row["psnr"] == pytest.approx(psnr_from_mse(row["mse"]), abs=1e-9), (path.name, name)
        assert 0 < row["ssim"] <= 1 and math.isfinite(row["hole_psnr"])
        if prov["dataset"] in EMBEDDED:
            semantic = {"house_numbers": {"digits"}, "toy_faces": {"intact", "attributes"}}[prov["dataset"]]
            assert semantic <= set(row), f"{path.name}: {name} lacks the semantic columns"
            assert all(0 <= row[k] <= 1 for k in semantic)


EMBEDDED_TABLES = [p for p in TABLES if json.loads(p.read_text())["provenance"]["dataset"] in EMBEDDED]
#: Made before ``evaluate`` recorded the checkpoint's and the scorer's checksums (the toy-face run).
BEFORE_CHECKSUMS = {"ablation_toy_faces_central", "ablation_toy_faces_three_squares",
                    "balance_toy_faces_central", "early_checkpoint_toy_faces_central"}


@pytest.mark.parametrize("path", EMBEDDED_TABLES, ids=[p.stem for p in EMBEDDED_TABLES])
def test_stored_table_belongs_to_the_shipped_checkpoint_and_scorer(path):
    """A table on embedded data was made with the shipped pair (or, with --checkpoint, an earlier state of
    the same training run) and the shipped scorer: retraining either without rerunning it fails here."""
    prov = json.loads(path.read_text())["provenance"]
    card = json.loads((CHECKPOINT_DIR / f"{prov['dataset']}_32.json").read_text())
    model = prov["model"]
    assert model["command"] == card["command"], f"{path.name}: made with another training run than the shipped one"
    recorded = path.stem not in BEFORE_CHECKSUMS   # else tied by command, iterations and wall time, and the test below
    assert recorded == ("checkpoint_checksum" in prov) == ("scorer_checksum" in prov)
    if "--checkpoint" in prov["command"]:
        assert model["iterations"] < card["iterations"]
    else:
        assert (model["iterations"], model["wall_time_s"]) == (card["iterations"], card["wall_time_s"])
        assert not recorded or prov["checkpoint_checksum"] == card["checksum"], f"{path.name}: another checkpoint"
    if not recorded:
        return
    scorer = json.loads((CHECKPOINT_DIR / "scorers" / f"{prov['dataset']}.json").read_text())
    assert prov["scorer_checksum"] == scorer["checksum"], f"{path.name}: another scorer"


shipped_scorer = functools.cache(load_scorer)        # loaded once per dataset; read-only: never train or move it


@pytest.mark.parametrize("path", EMBEDDED_TABLES, ids=[p.stem for p in EMBEDDED_TABLES])
def test_stored_harmonic_row_is_reproduced_with_the_shipped_scorer(path):
    """The one row without a search, recomputed: the same held-out images, mask, metrics and (from the
    shipped scorer) semantic accuracy. It ties every table to today's data generator and scorer, also
    those made before ``evaluate`` recorded checksums."""
    saved = json.loads(path.read_text())
    prov, stored = saved["provenance"], saved["table"]["Harmonic inpainting"]
    images, labels = labelled(prov["dataset"], prov["n"], prov["held_out"])
    mask = MASKS[prov["mask"]](images.shape[-1])
    filled = harmonic_inpaint(images, mask).clamp(-1, 1)
    row = {**score(filled, images, mask), **semantic_scores(shipped_scorer(prov["dataset"]), prov["dataset"], filled, labels)}
    assert set(row) == set(stored)
    for name, value in row.items():
        assert value == pytest.approx(stored[name], rel=1e-5, abs=1e-9), f"{path.name}: harmonic {name}"
    assert mse(filled, images).tolist() == pytest.approx(saved["per_image"]["Harmonic inpainting"]["mse"], abs=1e-3)
