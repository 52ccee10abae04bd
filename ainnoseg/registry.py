"""Models by name: `build_model("ainnoseg_w48", num_classes=150)`."""

_BUILDERS = {}


def register_model(name, builder):
    """Make `builder(num_classes=..., **options)` available as `name`."""
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} is registered twice")
    _BUILDERS[name] = builder


def list_models():
    """Names of every registered model, sorted."""
    return sorted(_BUILDERS)


def build_model(name, num_classes, **options):
    """Build a registered segmentation model with random or ImageNet weights.

    Args:
        name: one of `list_models()`, e.g. "ainnoseg_w18s" or "danet_r50".
        num_classes: number of classes the model predicts (at least 2).
        **options: passed to the builder, e.g. `pretrained=True` to start the
            backbone from ImageNet weights (needs internet access or a cache).
    Returns:
        A `Segmentor` whose forward returns {"out": logits, ...}.
    """
    if name not in _BUILDERS:
        known = ", ".join(list_models())
        raise ValueError(f"unknown model {name!r}; known models: {known}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer of at least 2, got {num_classes!r}; "
            "for a binary task use num_classes=2 (background and foreground)")
    return _BUILDERS[name](num_classes=num_classes, **options)
