"""Semantic accuracy (lesson 09): label encodings, the corrupted faces, scorer files, and the shipped
scorers' accuracy on clean held-out images against images whose meaning was removed."""
import math

import pytest
import torch

from lesson_lib.checkpoints import CheckpointError
from lesson_lib.masks import central_square
from lesson_lib.poisson import harmonic_inpaint
from lesson_lib.semantic import (DIGIT_HEADS, FACE_HEADS, VALIDATION_SEED, SemanticNet, corrupt_faces, digit_targets,
                                 labelled, load_scorer, read_digits, reading_confidence, region_mask, save_scorer,
                                 scorer_path, semantic_outcomes, semantic_scores)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_digit_targets():
    t = digit_targets(["7", "42", "905"])
    assert t["length"].tolist() == [0, 1, 2]
    assert t["d0"].tolist() == [7, 4, 9] and t["d1"].tolist() == [10, 2, 0] and t["d2"].tolist() == [10, 10, 5]
    for bad in ("", "1234", "4a"):
        with pytest.raises(ValueError, match="1 to 3 digits"):
            digit_targets([bad])


class FixedOutput(torch.nn.Module):
    """A 'network' that returns given logits, to test decoding independently of training."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, x):
        return self.out


def test_read_digits_decodes_length_and_digits():
    def onehot(idx, n):
        return torch.nn.functional.one_hot(torch.tensor(idx), n).float()
    out = {"length": onehot([1, 0], 3), "d0": onehot([3, 8], 10), "d1": onehot([5, 10], 11), "d2": onehot([10, 2], 11)}
    assert read_digits(FixedOutput(out), torch.zeros(2, 3, 32, 32)) == ["35", "8"]


def test_reading_confidence_against_a_loop():
    g = torch.Generator().manual_seed(0)
    out = {k: torch.randn(5, n, generator=g, dtype=torch.float64) * 3 for k, n in DIGIT_HEADS.items()}
    got = reading_confidence(FixedOutput(out), torch.zeros(5, 3, 32, 32))
    read = read_digits(FixedOutput(out), torch.zeros(5, 3, 32, 32))

    def prob(logits, k):                 # softmax probability of class k, by hand
        return math.exp(logits[k]) / sum(math.exp(v) for v in logits)

    for j in range(5):
        row = {k: v[j].tolist() for k, v in out.items()}
        expected = prob(row["length"], len(read[j]) - 1)
        for i, digit in enumerate(read[j]):
            expected *= prob(row[f"d{i}"], int(digit))
        assert got[j].item() == pytest.approx(expected, rel=1e-12)
    assert torch.all((0 < got) & (got <= 1))


def test_corrupt_faces_touch_only_feature_regions():
    faces = labelled("toy_faces", 8, seed=3)[0]
    out = corrupt_faces(faces, torch.Generator().manual_seed(0))
    allowed = torch.zeros(32, 32, dtype=torch.bool)
    for region in ("left_eye", "right_eye", "mouth"):
        allowed |= region_mask(32, region) == 0
    changed = (out != faces).any(1)                                  # (n, H, W)
    assert changed.any(dim=(1, 2)).all()                             # every face lost something
    assert not changed[:, ~allowed].any()                            # and only inside the feature boxes


def test_scorer_file_round_trip_and_tamper(tmp_path):
    torch.manual_seed(0)
    net = SemanticNet(FACE_HEADS, width=4).eval()
    path = tmp_path / "s.pt"
    save_scorer(net, "toy_faces", path, {"note": "test"})
    again = load_scorer("toy_faces", path)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert all(torch.equal(net(x)[k], again(x)[k]) for k in FACE_HEADS)
    with pytest.raises(CheckpointError, match="not a semantic scorer"):
        load_scorer("house_numbers", path)
    bad = torch.load(path, weights_only=True)
    bad["state"]["heads.intact.bias"] += 1
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match="checksum"):
        load_scorer("toy_faces", path)
    with pytest.raises(FileNotFoundError, match="train-scorer"):
        load_scorer("toy_faces", tmp_path / "missing.pt")


def test_scores_check_lengths_and_resize():
    torch.manual_seed(0)
    net = SemanticNet(DIGIT_HEADS, width=4)
    with pytest.raises(ValueError, match="labels"):
        semantic_scores(net, "house_numbers", torch.zeros(2, 3, 32, 32), ["1"])
    assert 0 <= semantic_scores(net, "house_numbers", torch.zeros(2, 3, 64, 64), ["1", "2"])["digits"] <= 1


def shipped(dataset):
    assert scorer_path(dataset).is_file(), f"the shipped scorer {scorer_path(dataset)} is missing"
    return load_scorer(dataset)


# Held-out images never seen by the scorers (seed 70 000: neither training nor validation).
N_TEST = 300


def test_shipped_digit_reader():
    """Reads clean held-out house numbers; loses the number once the central hole is filled smoothly."""
    net = shipped("house_numbers")
    x, labels = labelled("house_numbers", N_TEST, seed=70_000)
    clean = semantic_scores(net, "house_numbers", x, labels)["digits"]
    mask = central_square(32)
    smooth = semantic_scores(net, "house_numbers", harmonic_inpaint(x, mask).clamp(-1, 1), labels)["digits"]
    print(f"digit string accuracy: clean {clean:.3f}, central hole filled harmonically {smooth:.3f}")
    assert clean >= 0.85
    assert smooth <= clean - 0.3


def test_semantic_outcomes_per_image():
    """The per-image values behind the rates, computed here from the heads' outputs directly."""
    for dataset in ("house_numbers", "toy_faces"):
        net = shipped(dataset)
        x, labels = labelled(dataset, 24, seed=70_000)
        x = torch.cat([x[:12], harmonic_inpaint(x[12:], central_square(32)).clamp(-1, 1)])   # some right, some wrong
        outcomes = semantic_outcomes(net, dataset, x, labels)
        with torch.no_grad():
            out = net(x)
        if dataset == "house_numbers":
            length, digit = out["length"].argmax(1) + 1, [out[f"d{i}"][:, :10].argmax(1) for i in range(3)]
            read = ["".join(str(int(digit[i][k])) for i in range(int(length[k]))) for k in range(len(x))]
            assert outcomes == {"digits": [float(r == t) for r, t in zip(read, labels)]}
        else:
            assert outcomes["intact"] == out["intact"].argmax(1).float().tolist()
            right = [[float(out[a].argmax(1)[k] == int(labels[k][a])) for a in ("glasses", "smiling", "mouth_open")]
                     for k in range(len(x))]
            assert outcomes["attributes"] == pytest.approx([sum(r) / 3 for r in right])
        assert 0 < sum(next(iter(outcomes.values()))) < len(x)          # both kinds of image are there
        rates = semantic_scores(net, dataset, x, labels)
        assert rates == pytest.approx({k: sum(v) / len(v) for k, v in outcomes.items()})


def test_shipped_face_scorer():
    """Judges clean held-out faces intact and reads their attributes; judges faces whose eyes or
    mouth were erased, or whose centre is noise, as not intact; a centre with real features (from
    another face) as intact."""
    net = shipped("toy_faces")
    x, labels = labelled("toy_faces", N_TEST, seed=70_000)
    clean = semantic_scores(net, "toy_faces", x, labels)
    broken = semantic_scores(net, "toy_faces", corrupt_faces(x, torch.Generator().manual_seed(5)), labels)
    mask = central_square(32)
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(6)) * 2 - 1
    noisy = semantic_scores(net, "toy_faces", x * mask + noise * (1 - mask), labels)       # hole full of noise
    swapped = semantic_scores(net, "toy_faces", x * mask + x.roll(1, 0) * (1 - mask), labels)  # another face's centre
    print(f"clean {clean}, corrupted {broken}, noise in the hole {noisy}, another face's centre {swapped}")
    assert clean["intact"] >= 0.9 and clean["attributes"] >= 0.85
    assert broken["intact"] <= 0.1 and noisy["intact"] <= 0.1
    assert swapped["intact"] >= 0.8          # real features, even if not this face's: judged plausible
    assert VALIDATION_SEED != 70_000
