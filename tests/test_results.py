"""The stored result tables in data/results/ (lesson 09): present, complete, with their provenance,
and internally consistent (a hand-edited number would break PSNR = 10 log10(255^2 / MSE))."""
import functools
import json
import math
import re

import pytest

from lesson_lib.config import CHECKPOINT_DIR, RESULTS_DIR, ROOT_DIR
from lesson_lib.evaluate import MASKS, PAPER_TABLES, ROW_SETS, paired_vs_yeh, score
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
            for key in set(per) - {"mse", "ssim"}:               # semantic values per image, where kept
                assert len(per[key]) == prov["n"] and sum(per[key]) / prov["n"] == pytest.approx(row[key], abs=1e-4)
    for name, row in table.items():
        assert row["psnr"] == pytest.approx(psnr_from_mse(row["mse"]), abs=1e-9), (path.name, name)
        assert 0 < row["ssim"] <= 1 and math.isfinite(row["hole_psnr"])
        if prov["dataset"] in EMBEDDED:
            semantic = {"house_numbers": {"digits"}, "toy_faces": {"intact", "attributes"}}[prov["dataset"]]
            assert semantic <= set(row), f"{path.name}: {name} lacks the semantic columns"
            assert all(0 <= row[k] <= 1 for k in semantic)


EMBEDDED_TABLES = [p for p in TABLES if json.loads(p.read_text())["provenance"]["dataset"] in EMBEDDED]
#: Made before ``evaluate`` recorded the checkpoint's and the scorer's checksums (the toy-face studies).
BEFORE_CHECKSUMS = {"balance_toy_faces_central", "early_checkpoint_toy_faces_central"}


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


README = ROOT_DIR / "README.md"
#: README column -> (stored key, decimals); "lower MSE than Yeh" is the paired count, "paper (64 px)" the paper's.
README_COLUMNS = {"MSE": ("mse", 1), "PSNR": ("psnr", 2), "SSIM": ("ssim", 3), "hole PSNR": ("hole_psnr", 2),
                  "digits": ("digits", 2), "intact": ("intact", 2), "attributes": ("attributes", 2)}
PAPER_COLUMNS = {"paper (64 px): MSE": (0, 1), "PSNR": (1, 2), "SSIM": (2, 3)}


def readme_tables() -> dict[str, list[list[str]]]:
    """Each README table under a heading that names a stored result ("**house numbers, central**" or a
    backticked ``data/results/<name>.json``), keyed by that result's name: its header and rows as cells."""
    tables, name = {}, None
    for line in README.read_text().splitlines():
        heading = re.match(r"\s*\*\*(house numbers|toy faces), (central|three squares)\*\*", line)
        stored = re.search(r"`data/results/(\w+)\.json`", line) if line.lstrip().startswith("**") else None
        if heading:
            name = "ablation_" + "_".join(heading.groups()).replace(" ", "_")
        elif stored:
            name = stored.group(1)
        elif name and line.strip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-:"):
                tables.setdefault(name, []).append(cells)
        elif name in tables:          # the first line after the table's rows ends it
            name = None
    return tables


def test_readme_tables_quote_the_stored_results():
    """Every figure of the README's result tables is the stored one, rounded: a re-run that changes a
    table without the README (or a hand-typed figure) fails here."""
    tables = readme_tables()
    assert {"ablation_house_numbers_central", "ablation_toy_faces_three_squares", "celeba_central"} <= set(tables)
    for name, (header, *rows) in tables.items():
        saved = json.loads((RESULTS_DIR / f"{name}.json").read_text())
        paper = header.index("paper (64 px): MSE") if "paper (64 px): MSE" in header else len(header)
        assert rows and header[0] == "row", name
        if "lower MSE than Yeh" in header:
            count = saved.get("paired_vs_yeh") or paired_vs_yeh(saved["per_image"])
        for cells in rows:
            assert len(cells) == len(header), f"README, {name}: a row has {len(cells)} cells, the header {len(header)}"
            row, stored = cells[0], saved["table"][cells[0]]
            for column, cell in zip(header[1:paper], cells[1:paper]):
                if column == "lower MSE than Yeh":
                    expected = "-" if row == "Yeh et al. (2017)" else f"{count[row]['lower_mse']}/{saved['provenance']['n']}"
                else:
                    key, decimals = README_COLUMNS[column]
                    expected = f"{stored[key]:.{decimals}f}"
                assert cell == expected, f"README, {name}, {row}, {column}: {cell} but the stored table has {expected}"
            figures = PAPER_TABLES[saved["provenance"]["mask"]].get(row, {}).get("celeba")
            for column, cell in zip(header[paper:], cells[paper:]):
                index, decimals = PAPER_COLUMNS[column]
                assert cell == ("-" if figures is None else f"{figures[index]:.{decimals}f}"), (name, row, column)
