"""Slider callbacks for lesson 07: plain functions that redo an inpainting and return a figure.

The notebook calls ``preview(...)`` once in a plain cell (so a headless run exercises it) and then
wires the same callable to ipywidgets sliders with ``continuous_update=False``.
"""
from __future__ import annotations

import torch

from .inpaint import inpaint
from .viz import show_row


class InpaintPreview:
    """Callable ``(alpha, beta, eta) -> matplotlib Figure`` for one image and mask.

    Each call warm-starts from the previous call's z (``steps`` Adam steps, default 150), so a
    slider move on a CPU with the 32 px model takes a few seconds. The result therefore depends on
    the slider history, not only on (alpha, beta, eta); ``reset()`` starts again from the first code.
    """

    def __init__(self, generator, critic, image: torch.Tensor, mask: torch.Tensor, steps: int = 150, seed: int = 0):
        if image.dim() != 3:
            raise ValueError(f"the preview shows one image (C, H, W), got shape {tuple(image.shape)}")
        self.generator, self.critic, self.image, self.mask, self.steps = generator, critic, image, mask, steps
        self.z0 = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)
        self.reset()

    def reset(self) -> None:
        """Forget the warm start: the next call searches from the first code again."""
        self.z, self.last = self.z0, None

    def __call__(self, alpha: float = 0.1, beta: float = 0.9, eta: float = 0.5):
        result = inpaint(self.generator, self.critic, self.image, self.mask, alpha=alpha, beta=beta, eta=eta,
                         steps=self.steps, z_init=self.z, progress=False)
        self.z, self.last = result.z, result
        m = self.mask if self.mask.dim() == 2 else self.mask[0, 0]
        fig = show_row([self.image * m, result.generated[0], result.overlay[0], result.blended[0], self.image],
                       ["input", "G(z)", "overlay", "blended", "truth"])
        fig.suptitle(f"alpha={alpha:.2f}  beta={beta:.2f}  eta={eta:.2f}   final loss {result.loss.item():.2f}",
                     fontsize=9)
        fig.tight_layout()     # again, now with room for the title
        return fig


def sliders(callback, alpha: float = 0.1, beta: float = 0.9, eta: float = 0.5):
    """ipywidgets sliders for alpha, beta, eta (eq. 4) bound to ``callback``; updates on release."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    def show(alpha, beta, eta):
        fig = callback(alpha, beta, eta)
        display(fig)           # works on every backend (plt.show(fig) fails outside the inline one)
        plt.close(fig)         # shown once, and no pile-up of open figures

    kw = dict(min=0.0, max=2.0, step=0.05, continuous_update=False, readout_format=".2f")
    return w.interactive(show, alpha=w.FloatSlider(value=alpha, description="alpha", **kw),
                         beta=w.FloatSlider(value=beta, description="beta", **kw),
                         eta=w.FloatSlider(value=eta, description="eta", **kw))
