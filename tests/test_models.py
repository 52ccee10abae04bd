import contextlib

import pytest
import torch
from torch import nn

import ainnoseg
from ainnoseg.models import backbones
from ainnoseg.models.attention import PositionAttention
from model_helpers import with_attention_on

NUM_CLASSES = 5


def _parameter_count(model):
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def _zero_gradients_by_construction(model):
    """Collects, during the forward passes inside it, the parameters whose
    gradient the architecture makes zero (up to rounding): biases of the
    convolutions that feed a batch norm in training mode, whose batch mean takes
    them out again, and the key projection's bias in position attention, which
    adds q . b to all the scores of a query's row, where the softmax takes it out."""
    found = {id(m.key_conv.bias) for m in model.modules() if isinstance(m, PositionAttention)}
    produced = {}

    def remember(conv, inputs, output):
        produced[id(output)] = (conv, output)  # holding the output keeps its id unique

    def check(batch_norm, inputs):
        conv, output = produced.get(id(inputs[0]), (None, None))
        if output is inputs[0] and conv.bias is not None and batch_norm.training:
            found.add(id(conv.bias))

    hooks = [m.register_forward_hook(remember) for m in model.modules()
             if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(check) for m in model.modules()
              if isinstance(m, nn.BatchNorm2d)]
    try:
        yield found
    finally:
        for hook in hooks:
            hook.remove()
        produced.clear()


@pytest.mark.parametrize("name", ainnoseg.list_models())
def test_every_model_trains_and_predicts_at_input_size(name):
    # Attention on: with gamma = 0, as built, its convolutions get no gradient.
    model = with_attention_on(ainnoseg.build_model(name, num_classes=NUM_CLASSES))
    images = torch.randn(2, 3, 41, 75)  # odd sides: padded inside, cropped back
    model.train()
    with _zero_gradients_by_construction(model) as zero_by_construction:
        outputs = model(images)
    assert set(outputs) == set(model.loss_weights)
    for logits in outputs.values():
        assert logits.shape == (2, NUM_CLASSES, 41, 75)
        assert torch.isfinite(logits).all()
    loss, _ = ainnoseg.build_loss(model)(outputs, torch.randint(0, NUM_CLASSES, (2, 41, 75)))
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for parameter_name, parameter in trainable:
        assert parameter.grad is not None, f"{parameter_name} gets no gradient"
        largest = parameter.grad.abs().amax()  # NaN if any element is NaN
        assert torch.isfinite(largest), f"{parameter_name} gets a gradient of {largest}"
        if id(parameter) not in zero_by_construction:
            assert largest > 0, f"{parameter_name} gets a zero gradient"
    model.eval()
    with torch.no_grad():
        outputs = model(images[:1])
    assert set(outputs) == set(model.loss_weights)
    assert all(logits.shape == (1, NUM_CLASSES, 41, 75) for logits in outputs.values())


@pytest.mark.parametrize("name", ainnoseg.list_models())
def test_every_model_returns_the_same_keys_in_train_and_eval_mode(name):
    """The segmentor's contract (torchvision's): one set of keys, "out" first,
    whatever the mode; a caller never asks which mode made a dict."""
    model = ainnoseg.build_model(name, num_classes=NUM_CLASSES)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        trained = model.train()(images)
        evaluated = model.eval()(images)
        resized = model(images, output_size=(32, 48))
    assert list(trained) == list(evaluated) == list(resized)
    assert next(iter(evaluated)) == "out" and set(evaluated) == set(model.loss_weights)
    assert all(logits.shape[-2:] == (32, 48) for logits in resized.values())


@pytest.mark.parametrize("name, published, tolerance", [
    ("hrnetv2_w48", 65.8e6, 0.02),
    ("hrnetv2_w18s", 3.9e6, 0.02),
])
def test_parameter_counts_match_the_published_ones(name, published, tolerance):
    count = _parameter_count(ainnoseg.build_model(name, num_classes=19))
    assert abs(count - published) / published <= tolerance, count


def test_hrnetv2_representation_has_15_times_width_channels():
    for width, channels in [("w18s", 270), ("w48", 720)]:
        model = ainnoseg.build_model(f"hrnetv2_{width}", num_classes=2)
        assert model.backbone.out_channels == channels


def test_padding_does_not_change_the_logits_of_the_original_pixels():
    """A 64x96 input and the same image zero-padded to 64x96 by the model agree."""
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3).eval()
    image = torch.randn(1, 3, 50, 90)
    padded = torch.nn.functional.pad(image, (0, 6, 0, 14))
    with torch.no_grad():
        cropped = model(padded)["out"][..., :50, :90]
        direct = model(image)["out"]
    torch.testing.assert_close(direct, cropped)


def test_danet_is_dilated_to_output_stride_8():
    model = ainnoseg.build_model("danet_r18", num_classes=3).eval()
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 64, 96))
    assert features.shape == (1, 512, 8, 12)


@pytest.mark.parametrize("images, message", [
    (torch.randn(3, 64, 64), "add the batch dimension"),
    (torch.randn(1, 1, 64, 64), "3-channel RGB"),
    (torch.randn(1, 4, 64, 64), "3-channel RGB"),
    (torch.randn(1, 3, 16, 64), "smaller than the network's stride 32"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "float images"),
])
def test_bad_input_says_what_is_wrong(images, message):
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3)
    with pytest.raises(ValueError, match=message):
        model(images)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="known models: .*ainnoseg_w18s"):
        ainnoseg.build_model("ainnoseg_w99", num_classes=3)


@pytest.mark.parametrize("num_classes", [1, 0, -3, 2.5])
def test_num_classes_below_two_is_refused(num_classes):
    with pytest.raises(ValueError, match="at least 2"):
        ainnoseg.build_model("hrnetv2_w18s", num_classes=num_classes)


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        ainnoseg.registry.register_model("hrnetv2_w18s", lambda **kw: None)


@pytest.mark.parametrize("name", ["hrnetv2_w18s", "danet_r18"])
def test_pretrained_weights_that_cannot_be_fetched_give_a_clear_error(name, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(backbones.timm, "create_model", no_network)
    monkeypatch.setattr(backbones.torchvision.models, "get_model", no_network)
    with pytest.raises(RuntimeError, match="pretrained=False"):
        ainnoseg.build_model(name, num_classes=3, pretrained=True)
