"""Which reduced precision a device runs natively, and the names settings use for it."""

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
AMP_SETTINGS = ("auto", "bf16", "fp16", "off")


def native_half_precision(device):
    """bf16 on CUDA cards that have it (else fp16), bf16 on CPUs with native
    bf16 (AVX512-BF16, AMX), None elsewhere: there bf16 is slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        return torch.bfloat16
    return None


def resolve_amp(setting, device):
    """The autocast dtype for `setting` = auto | bf16 | fp16 | off (False and
    None mean off), or None for float32."""
    if setting in (None, False, "off"):
        return None
    if setting == "auto":
        return native_half_precision(device)
    if setting not in AMP_DTYPES:
        raise ValueError(f"amp must be one of {', '.join(AMP_SETTINGS)}, got {setting!r}")
    return AMP_DTYPES[setting]
