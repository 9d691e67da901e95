"""Lesson 07's sliders through the Jupyter widget protocol, as JupyterLab drives them.

A real IPython kernel (jupyter_client) builds the sliders; the test then plays the front end: it
reads the widget models the kernel opens (``comm_open``, target ``jupyter.widget``) and moves the eta
slider by sending the ``comm_msg`` "update" that JupyterLab's widget manager sends on release. The
kernel must redo the inpainting with the new value and send a new figure.
"""
import os
import sys

import jupyter_client  # installed with jupyterlab (requirements.txt): a missing one is a failure
import pytest

SETUP = """
import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
import torch
torch.set_num_threads(1)
from IPython.display import display
from lesson_lib.masks import central_square
from lesson_lib.models import Critic, Generator
from lesson_lib.widgets import InpaintPreview, sliders
torch.manual_seed(0)
g, d = Generator(32, 4).eval(), Critic(32, 4).eval()
preview = InpaintPreview(g, d, torch.zeros(3, 32, 32), central_square(32), steps=5)
ui = sliders(preview)
display(ui)
"""


def collect(kc, parent_id: str, timeout: float = 60.0) -> list[dict]:
    """All iopub messages caused by the request ``parent_id``, until the kernel is idle again."""
    messages = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != parent_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages


def replies(kc, msg_id: str) -> list[dict]:
    """The iopub messages of one request, which must not have raised."""
    messages = collect(kc, msg_id)
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert not errors, errors
    return messages


def run(kc, code: str) -> list[dict]:
    return replies(kc, kc.execute(code))


def figures(messages: list[dict]) -> int:
    return sum(m["msg_type"] == "display_data" and "image/png" in m["content"]["data"] for m in messages)


@pytest.fixture(scope="module")
def kernel():
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "OMP_NUM_THREADS": "1"})
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    python = run(kc, "import sys; print(sys.executable)")
    assert any(m["msg_type"] == "stream" and m["content"]["text"].strip() == sys.executable for m in python), \
        "the kernel does not run this environment's Python"
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_moving_a_slider_in_the_front_end_redoes_the_inpainting(kernel):
    kc = kernel
    created = run(kc, SETUP)
    assert figures(created) == 1                      # the first inpainting, shown on creation
    opened = [m for m in created if m["msg_type"] == "comm_open"]
    models = {m["content"]["comm_id"]: m["content"]["data"]["state"] for m in opened
              if m["content"]["target_name"] == "jupyter.widget"}
    slider_ids = {s["description"]: cid for cid, s in models.items() if s["_model_name"] == "FloatSliderModel"}
    assert sorted(slider_ids) == ["alpha", "beta", "eta"]
    assert models[slider_ids["eta"]]["value"] == 0.5 and models[slider_ids["eta"]]["continuous_update"] is False
    assert any(s["_model_name"] == "OutputModel" for s in models.values())

    # what JupyterLab sends when the learner releases the eta slider at 1.0
    msg = kc.session.msg("comm_msg", {"comm_id": slider_ids["eta"],
                                      "data": {"method": "update", "state": {"value": 1.0}, "buffer_paths": []}})
    kc.shell_channel.send(msg)
    assert figures(replies(kc, msg["header"]["msg_id"])) == 1, "the kernel did not send a new figure for the slider move"

    state = run(kc, "print(ui.kwargs)")
    printed = "".join(m["content"]["text"] for m in state if m["msg_type"] == "stream")
    assert "'eta': 1.0" in printed and "'alpha': 0.1" in printed and "'beta': 0.9" in printed


def test_jupyterlab_has_the_widget_manager():
    """Without this lab extension JupyterLab shows 'Error displaying widget' instead of sliders."""
    from pathlib import Path

    import jupyterlab_widgets
    (ext,) = jupyterlab_widgets._jupyter_labextension_paths()
    assert ext["dest"] == "@jupyter-widgets/jupyterlab-manager"
    assert (Path(ext["src"]) / "package.json").is_file(), f"lab extension files missing at {ext['src']}"
