"""Models by name: `build_model("ainnoseg_w48", num_classes=150)`."""

_BUILDERS = {}
_OPTIONS = {}


def register_model(name, builder, options=()):
    """Make `builder(num_classes=..., pretrained=..., **options)` available as
    `name`; `options` names the architecture options the builder takes."""
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} is registered twice")
    _BUILDERS[name] = builder
    _OPTIONS[name] = tuple(options)


def model_option_names(name):
    """The architecture options `build_model(name, ...)` takes besides
    `pretrained`, e.g. ("da_channels", "cam_energy") for DANet."""
    _check_known(name)
    return _OPTIONS[name]


def _check_known(name):
    if name not in _BUILDERS:
        known = ", ".join(list_models())
        raise ValueError(f"unknown model {name!r}; known models: {known}")


def list_models():
    """Names of every registered model, sorted."""
    return sorted(_BUILDERS)


def build_model(name, num_classes, **options):
    """Build a registered segmentation model with random or ImageNet weights.

    Args:
        name: one of `list_models()`, e.g. "ainnoseg_w18s" or "danet_r50".
        num_classes: number of classes the model predicts (at least 2).
        **options: passed to the builder: `pretrained=True` starts the
            backbone from ImageNet weights (needs internet access or a cache);
            the others are the model's `model_option_names(name)`.
    Returns:
        A `Segmentor` whose forward returns {"out": logits, ...}.
    """
    _check_known(name)
    allowed = ("pretrained", *_OPTIONS[name])
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"model {name!r} takes no option {', '.join(unknown)}; "
                         f"its options: {', '.join(_OPTIONS[name]) or 'none'}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer of at least 2, got {num_classes!r}; "
            "for a binary task use num_classes=2 (background and foreground)")
    return _BUILDERS[name](num_classes=num_classes, **options)
