"""Models as the tests need them: attention switched on, batch norms calibrated.

DANet's position and channel attention start with gamma = 0 (out = gamma *
attention + x), so a freshly built model multiplies the whole attention path
by zero: a test comparing two computations of it would pass whatever that
path computes. Tests that compare paths switch the attention on first.
"""

import torch

from ainnoseg.models.attention import ChannelAttention, PositionAttention

# Different for the two branches, so that swapping them changes the output too.
PAM_GAMMA, CAM_GAMMA = 0.7, 0.4


def with_attention_on(model, pam=PAM_GAMMA, cam=CAM_GAMMA):
    """`model` with every PAM gamma set to `pam` and every CAM gamma to `cam`
    (in place); returns the model. Models without attention are returned as
    they are."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, PositionAttention):
                module.gamma.fill_(pam)
            elif isinstance(module, ChannelAttention):
                module.gamma.fill_(cam)
    return model


def calibrate_batch_norms(model, images):
    """Set every batch norm's running statistics to those of `images` and put
    `model` in eval mode (in place); returns the model.

    A freshly built model normalises with mean 0 and variance 1, so in eval
    mode its activations grow layer after layer (HRNet's reach the hundreds)
    and position attention degenerates to a hard argmax. Statistics measured
    on a batch keep them near unit scale, as in a trained model.
    """
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in batch_norms]
    for module in batch_norms:
        module.reset_running_stats()
        module.momentum = None  # a cumulative average: after one batch, its statistics
    model.train()
    with torch.no_grad():
        model(images)
    for module, momentum in zip(batch_norms, momenta):
        module.momentum = momentum
    return model.eval()
