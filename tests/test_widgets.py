"""Slider callbacks of lesson 07: a figure per call, warm starts, and the ipywidgets wiring."""
import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lesson_lib.masks import central_square  # noqa: E402
from lesson_lib.models import Critic, Generator  # noqa: E402
from lesson_lib.widgets import InpaintPreview, sliders  # noqa: E402



@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is much faster than two fighting over a busy 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    g, d = Generator(32, 4).eval(), Critic(32, 4).eval()
    with torch.no_grad():
        g.out.weight *= 4
    return g, d


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_preview_returns_a_figure_and_warm_starts(pair):
    g, d = pair
    with torch.no_grad():
        image = g(torch.rand(1, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1)[0]
    preview = InpaintPreview(g, d, image, central_square(32), steps=15, seed=3)
    z_start = preview.z.clone()
    assert z_start.abs().max() <= 1

    fig = preview(0.1, 0.9, 0.5)
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    first = preview.last
    assert not torch.equal(preview.z, z_start) and torch.equal(preview.z, first.z)
    assert "alpha=0.10" in fig._suptitle.get_text()

    second_fig = preview(0.1, 0.9, 0.5)
    second = preview.last
    assert isinstance(second_fig, Figure) and second_fig is not fig
    # the second search starts where the first ended: its first loss is the first search's final loss
    assert second.history["total"][0] == pytest.approx(first.loss.item(), rel=1e-5)
    assert second.history["total"][0] < first.history["total"][0]
    assert not torch.equal(preview.z, first.z)

    preview.reset()                      # back to the first code: the first search again, exactly
    assert torch.equal(preview.z, z_start) and preview.last is None
    preview(0.1, 0.9, 0.5)
    assert torch.equal(preview.last.z, first.z)


def test_preview_takes_one_image(pair):
    g, d = pair
    with pytest.raises(ValueError, match="one image"):
        InpaintPreview(g, d, torch.zeros(2, 3, 32, 32), central_square(32))


def test_sliders_wire_three_float_sliders(pair):
    calls = []

    def callback(alpha, beta, eta):
        calls.append((alpha, beta, eta))
        fig, _ = plt.subplots()
        return fig

    ui = sliders(callback)
    assert isinstance(ui, ipywidgets.interactive)
    found = [c for c in ui.children if isinstance(c, ipywidgets.FloatSlider)]
    assert [s.description for s in found] == ["alpha", "beta", "eta"]
    assert [s.value for s in found] == [0.1, 0.9, 0.5]
    assert all(not s.continuous_update for s in found)
    assert all(s.min == 0 and s.max >= 1 for s in found)
    assert calls == [(0.1, 0.9, 0.5)]                 # interactive runs the callback once on creation
    assert plt.get_fignums() == []                    # the figure was shown and closed, not left open
    found[2].value = 1.0                              # a slider release redoes the inpainting
    assert calls[-1] == (0.1, 0.9, 1.0) and plt.get_fignums() == []
