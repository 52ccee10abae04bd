"""What the demo's tests share: the demo's modules, a small release set of
the three families written in a test folder, and the running demo on a free port.

The release set holds hrnetv2_w18s, danet_r18 and ainnoseg_w18s with random
weights, so the tests need neither the synthetic zoo nor a download.
"""

import contextlib
import importlib.util
import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ainnoseg.checkpoints import save_checkpoint
from ainnoseg.config import load_config
from ainnoseg.data import SyntheticScenes
from ainnoseg.registry import build_model

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
APP_DIR = Path(__file__).resolve().parents[1] / "app"
DEMO_FILE = APP_DIR / "demo.py"
THREE = ("hrnetv2_w18s", "danet_r18", "ainnoseg_w18s")


def load_demo():
    """The module app/demo.py, imported once per test process; its handlers
    (app/demo_handlers.py) are its `handlers`."""
    if str(APP_DIR) not in sys.path:
        sys.path.append(str(APP_DIR))  # as `python app/demo.py` has it
    if "ainnoseg_demo_app" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ainnoseg_demo_app", DEMO_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules["ainnoseg_demo_app"] = module
        spec.loader.exec_module(module)
    return sys.modules["ainnoseg_demo_app"]


def load_handlers():
    """The module app/demo_handlers.py."""
    return load_demo().handlers


def shown_outputs(names):
    """The outputs among `names` that the API returns (not the state, not columns)."""
    return [name for name in names if name != "state" and not name.endswith(" column")]


def write_checkpoint(path, model_name, num_classes=11):
    """A float16 checkpoint of `model_name` as `ainnoseg publish` writes one."""
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=num_classes)
    names = SyntheticScenes.class_names + [f"class {i}" for i in range(11, num_classes)]
    names = names[:num_classes]
    state = {"model": {key: value.half() if value.is_floating_point() else value
                       for key, value in model.state_dict().items()},
             "config": load_config(None, [f"model={model_name}", "crop_size=[64,80]"]).to_dict(),
             "class_names": names, "palette": [(i * 20 % 256, 80, 200 - i * 15 % 200)
                                               for i in range(num_classes)]}
    save_checkpoint(state, path)
    return path


def write_release_set(root, dataset="synthetic", models=THREE):
    """root/<dataset>/manifest.json and one checkpoint per model; returns root."""
    folder = Path(root) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name in models:
        write_checkpoint(folder / f"{name}.pt", name)
        manifest[name] = {"file": f"{name}.pt", "model": name}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return Path(root)


def write_scene(path, size=(96, 120), index=0):
    """A synthetic scene and its mask as PNGs: (image path, mask path)."""
    image, mask = SyntheticScenes("val", size=size, length=index + 1)[index]
    path = Path(path)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
    mask_path = path.with_name(f"{path.stem}_mask.png")
    Image.fromarray(mask.numpy()).save(mask_path)
    return path, mask_path


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_demo(settings):
    """The demo with `settings` (a `Settings`) launched on a free localhost
    port; yields its url, and always closes it."""
    app = load_demo()
    demo = app.build_demo(settings)
    port = free_port()
    try:
        demo.queue(max_size=32).launch(prevent_thread_lock=True, server_name="127.0.0.1",
                                       server_port=port, quiet=True,
                                       **app.handlers.launch_options(settings))
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def read_picture(path):
    return np.asarray(Image.open(path).convert("RGB"))
