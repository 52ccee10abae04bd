"""Score an auxiliary output as if it were the model's final one.

AinnoSeg trains three outputs ("out", and the "ocr" soft regions and "da"
dual-attention logits its loss weighs); HRNet-OCR and DANet have their own.
How good each auxiliary output is on its own says which part of a network
holds it back:

    ocr_only = AuxiliaryOutput(model, "ocr")
    evaluate(ocr_only, dataset)      # or: ainnoseg eval CHECKPOINT DATA --output ocr
"""

from torch import nn


def output_names(model):
    """The outputs a segmentor returns: "out" and those its loss weighs."""
    return ["out", *(name for name in model.loss_weights if name != "out")]


class AuxiliaryOutput(nn.Module):
    """`model` with its `name` logits returned as "out", so every function
    that reads "out" (predict, evaluate, the confusion counts) reads them.

    Args:
        model: a segmentor or a `FastSegmentor`; it is wrapped, not copied.
        name: one of the keys its forward returns, e.g. "ocr" or "da".
    """

    takes_output_size = True

    def __init__(self, model, name):
        super().__init__()
        self.model = model
        self.name = name
        self.num_classes = model.num_classes
        self.stride = model.stride
        self.meta = getattr(model, "meta", None)
        self.train(model.training)

    def forward(self, images, output_size=None):
        logits = self.model(images, output_size)
        if self.name not in logits:
            raise ValueError(f"the model has no output {self.name!r}; it returns "
                             f"{', '.join(sorted(logits))}")
        return {"out": logits[self.name]}

    def train(self, mode=True):
        self.model.train(mode)
        self.training = mode
        return self
