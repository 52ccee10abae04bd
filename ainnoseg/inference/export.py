"""Export a segmentor to ONNX or TorchScript, and check the copy against PyTorch.

The exported graph takes normalised (N, 3, H, W) float32 images and returns
the logits (N, K, H, W). ONNX is exported with the batch, height and width
free where that gives the right logits at every size (HRNetV2, HRNet-OCR),
else for the example's batch and size; TorchScript is traced for one size.
Position attention is exported as its chunked loop, so no N x N map appears
in the graph; the exporter unrolls that loop for the traced size, which is
why models with position attention (DANet, HRNet + DA, AinnoSeg) export for
one size.
"""

import numpy as np
import torch
from torch import nn


class LogitsOnly(nn.Module):
    """The segmentor's "out" logits as one tensor, as export formats want
    (the auxiliary logits, for the loss, are left out of the graph)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images)["out"]


def _example(model, image_size, batch=1):
    """Random images of `image_size`, refused with the fix when smaller than
    the network's stride (the models pad to it, the exporters cannot)."""
    height, width = image_size
    stride = getattr(model, "stride", 1)
    if min(height, width) < stride:
        raise ValueError(f"size {height}x{width} is smaller than the network's stride "
                         f"{stride}: export for images of at least {stride}x{stride}, e.g. "
                         "the size of the training frames")
    return torch.randn(batch, 3, height, width)


def free_size_exports(model):
    """Whether an ONNX graph of `model` may take any batch and size: not with
    position attention, whose chunks of rows (as many as the batch and size
    need) the exporter unrolls for the traced shape."""
    from ..models.attention import PositionAttention

    return not any(isinstance(module, PositionAttention) for module in model.modules())


def export_onnx(model, path, image_size=(512, 512), dynamic=True):
    """Write `model` (in eval mode) as ONNX to `path`, traced on images of
    `image_size`; with `dynamic`, the graph takes any batch, height and width
    where `free_size_exports(model)` (falling back to the traced shape where
    the exporter fails). The weights go to `path` + ".data" beside it;
    `onnx_input_shape` tells which shape the graph takes."""
    dynamic = dynamic and free_size_exports(model)
    wrapped = LogitsOnly(model).eval()
    # A batch of 2: the exporter fixes a dimension it sees as 1.
    example = (_example(model, image_size, batch=2 if dynamic else 1),)
    options = dict(dynamo=True, input_names=["images"], output_names=["logits"], verbose=False)
    if dynamic:
        free = torch.export.Dim.AUTO
        try:
            torch.onnx.export(wrapped, example, str(path),
                              dynamic_shapes={"images": {0: free, 2: free, 3: free}}, **options)
            return path
        except Exception:  # the exporter's many error types; a fixed size still works
            pass
    torch.onnx.export(wrapped, (example[0][:1],), str(path), **options)
    return path


def onnx_input_shape(path):
    """The ONNX graph's input shape, names for free dimensions: e.g.
    ['s0', 3, 's1', 's2'] (any batch and size) or [1, 3, 360, 480]."""
    return _session(path).get_inputs()[0].shape


def export_torchscript(model, path, image_size=(512, 512)):
    """Write a traced TorchScript copy of `model` for images of `image_size`."""
    with torch.no_grad():
        traced = torch.jit.trace(LogitsOnly(model).eval(), _example(model, image_size))
    traced.save(str(path))
    return path


def _session(path):
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("checking an ONNX export needs onnxruntime: "
                          "pip install onnxruntime") from error
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def onnx_difference(path, model, images):
    """Largest absolute difference of onnxruntime's logits from PyTorch's."""
    (exported,) = _session(path).run(None, {"images": images.numpy()})
    with torch.no_grad():
        reference = model.eval()(images)["out"].numpy()
    return float(np.abs(exported - reference).max())
