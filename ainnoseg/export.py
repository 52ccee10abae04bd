"""Export a segmentor to ONNX or TorchScript, and check the copy against PyTorch.

The exported graph takes normalised (N, 3, H, W) float32 images of the size
given at export and returns the logits (N, K, H, W); position attention is
exported as its chunked loop, so no N x N map appears in the graph either.
"""

import numpy as np
import torch
from torch import nn


class LogitsOnly(nn.Module):
    """The segmentor with a tensor output, as export formats want."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images)["out"]


def _example(image_size, batch=1):
    return torch.randn(batch, 3, *image_size)


def export_onnx(model, path, image_size=(512, 512)):
    """Write `model` (in eval mode) as ONNX to `path` for images of `image_size`."""
    wrapped = LogitsOnly(model).eval()
    torch.onnx.export(wrapped, (_example(image_size),), str(path), dynamo=True,
                      input_names=["images"], output_names=["logits"], verbose=False)
    return path


def export_torchscript(model, path, image_size=(512, 512)):
    """Write a traced TorchScript copy of `model` for images of `image_size`."""
    with torch.no_grad():
        traced = torch.jit.trace(LogitsOnly(model).eval(), _example(image_size))
    traced.save(str(path))
    return path


def onnx_difference(path, model, images):
    """Largest absolute difference of onnxruntime's logits from PyTorch's."""
    try:
        import onnxruntime
    except ImportError as error:
        raise RuntimeError("checking an ONNX export needs onnxruntime: pip install onnxruntime") from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        reference = model.eval()(images)["out"].numpy()
    return float(np.abs(exported - reference).max())
