"""The fast inference configuration: batch norms folded into the convolutions
before them, channels_last, and bf16 (or fp16) autocast where the hardware
runs it natively; optionally `torch.compile`.

    fast = optimize_for_inference(model)        # a copy; `model` is untouched
    probs = ainnoseg.predict(fast, images)

`benchmarks/inference.py` measures each choice against the plain model.
"""

import contextlib
import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .precision import resolve_amp

_PROBE_SIZE = 64


def _conv_batch_norm_pairs(model):
    """(conv, batch norm) pairs where the batch norm takes the convolution's
    output directly, found by running the model once on a small input."""
    produced, pairs = {}, []

    def remember_output(conv, inputs, output):
        produced[id(output)] = (conv, output)  # holding `output` keeps its id unique

    def match_input(batch_norm, inputs):
        found = produced.get(id(inputs[0]))
        if found is not None and found[1] is inputs[0]:
            pairs.append((found[0], batch_norm))

    hooks = [module.register_forward_hook(remember_output)
             for module in model.modules() if type(module) is nn.Conv2d]
    hooks += [module.register_forward_pre_hook(match_input)
              for module in model.modules() if type(module) is nn.BatchNorm2d]
    parameter = next(model.parameters())
    probe = torch.zeros(1, 3, _PROBE_SIZE, _PROBE_SIZE, device=parameter.device,
                        dtype=parameter.dtype)
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    return pairs


def fold_batch_norms(model):
    """Fold every eval-mode batch norm into the convolution that feeds it,
    in place, leaving an `nn.Identity` where the batch norm was.

    The convolution's output must go only to its batch norm, as in every
    conv-BN pair of the registered models (the tests check each family).
    Returns the number of batch norms folded.
    """
    if model.training:
        raise RuntimeError("batch norms fold only in eval mode; call model.eval() first")
    names = {module: name for name, module in model.named_modules()}
    pairs = _conv_batch_norm_pairs(model)
    if len({conv for conv, _ in pairs}) != len(pairs):
        raise RuntimeError("a convolution feeds several batch norms; it cannot be folded")
    for conv, batch_norm in pairs:
        for module, replacement in ((conv, fuse_conv_bn_eval(conv, batch_norm)),
                                    (batch_norm, nn.Identity())):
            parent, _, attribute = names[module].rpartition(".")
            setattr(model.get_submodule(parent), attribute, replacement)
    return len(pairs)


class FastSegmentor(nn.Module):
    """A prepared segmentor: channels_last inputs, autocast, float32 logits out.

    Same call and same keys as the `Segmentor` it wraps: `fast(images,
    output_size=None)` returns {"out": float32 logits, and the auxiliary
    logits}; `meta` is the model's. Made by `optimize_for_inference`.
    """

    takes_output_size = True

    def __init__(self, model, amp_dtype=None, channels_last=True, compiled=None):
        super().__init__()
        self.model = model
        self.compiled = compiled
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.num_classes = model.num_classes
        self.stride = model.stride
        self.meta = getattr(model, "meta", None)

    def forward(self, images, output_size=None):
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast(images.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype else contextlib.nullcontext())
        with autocast:
            run = self.model if self.compiled is None else self.compiled
            logits = run(images, output_size)
        return {name: value.float() for name, value in logits.items()}

    def train(self, mode=True):
        if mode:
            raise RuntimeError("a FastSegmentor is for inference only; train the original model")
        return super().train(False)


def optimize_for_inference(model, amp="auto", channels_last=True, fold_bn=True, compile=False):
    """A copy of `model` in the fast inference configuration, with the same
    `meta` (classes, palette, config) that `ainnoseg.load` gave `model`.

    Args:
        model: a segmentor (any registered model); it is copied, not changed.
        amp: "auto" (bf16 on AMX/AVX512-BF16 CPUs and CUDA, fp16 on CUDA
            cards without bf16, float32 elsewhere), "bf16", "fp16" or "off".
        channels_last: NHWC memory layout, which oneDNN and cuDNN run fastest
            (in half precision especially).
        fold_bn: fold batch norms into the convolutions before them.
        compile: `torch.compile` the model; it pays for many images of one
            size (about a minute or two to compile a W48 model on 2 CPU cores,
            then 3-18 % faster in benchmarks/inference.py; every new image
            size compiles again).
    """
    fast = copy.deepcopy(model).eval()
    device = next(fast.parameters()).device
    if fold_bn:
        fold_batch_norms(fast)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    for parameter in fast.parameters():
        parameter.requires_grad_(False)
    compiled = torch.compile(fast) if compile else None
    return FastSegmentor(fast, resolve_amp(amp, device), channels_last, compiled).eval()
