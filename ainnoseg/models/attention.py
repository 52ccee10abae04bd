"""DANet's position and channel attention (Fu et al. 2019, arXiv 1809.02983).

The position attention (PAM) of DANet multiplies an N x N softmax map, N = H*W,
with the value features. Materialised, that map is 1.1 GB per 130x130 feature
map in fp32 and 27 GB at the paper's largest scale. `position_attention`
computes the same numbers over chunks of query rows and recomputes each chunk
in the backward pass (as FlashAttention does), so memory stays O(N * C).

Why not `scaled_dot_product_attention` everywhere: DANet's query/key width
(C/8) differs from its value width (C), and on the CPU SDPA then falls back to
its math kernel, which builds the whole N x N matrix. Padding q/k or splitting
v into heads reaches the flash kernel but multiplies the query-key work by
C/(C/8)=8. On CUDA, SDPA's memory-efficient kernel takes a value wider than
query and key (widths multiples of 8), keeps no N x N map either and runs each
pass as one kernel instead of a Python loop of chunks, so CUDA tensors go
there first; where it refuses the inputs, they take the chunked path.

On a CPU with AMX tiles (Intel Xeon since Sapphire Rapids), half-precision
inputs (bf16 autocast) go to SDPA's flash kernel with query, key and value
zero-padded to one width, the value's rounded up to 16. The query-key
products grow tenfold (8 to 80 columns for a 67-wide value), yet where the
value is narrow the one fused, AMX-tiled kernel beats the chunks' separate
products, copies and softmax passes: under half their time in inference,
about 0.8 of it in training; and its fp32 accumulation is about 10x closer
to the exact result (`benchmarks/pam_kernels.py`). Training with a wide value
keeps the chunked path: there the padded products cost more than the fusion
saves (DANet-R50's 512 channels, a third slower). Without AMX (an AMD EPYC
with AVX-512 bf16) the tenfold products cost more than the fusion saves at
every shape we run, 1.3x to 2.9x the chunks' time, so bf16 keeps the chunks
there. fp32 and float64 keep the chunked path, which the flash kernel does
not beat.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

# Rows of the attention map computed at once: elements per chunk, 8 MB
# of fp32. Large enough for efficient matrix products, small enough for cache.
_CHUNK_ELEMENTS = 1 << 21


def naive_position_attention(query, key, value):
    """DANet's formula as its authors wrote it; materialises the N x N map.

    Args:
        query, key: (B, N, Cq). value: (B, N, C).
    Returns:
        (B, N, C): softmax(query @ key^T) @ value, without 1/sqrt(d) scaling.
    """
    attention = torch.softmax(torch.bmm(query, key.transpose(1, 2)), dim=-1)
    return torch.bmm(attention.to(value.dtype), value)


def _chunk_rows(batch, positions):
    """Rows per chunk: about _CHUNK_ELEMENTS, rounded up to a multiple of 32
    so the matrix products keep a shape the BLAS kernels like."""
    rows = _CHUNK_ELEMENTS // max(1, batch * positions)
    return max(32, -(-rows // 32) * 32)


def _softmax_dtype(dtype):
    """fp32 for half types, else the input's own (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def _operand(tensor):
    """Half-precision operands made contiguous: some bf16 batched-GEMM paths
    are a thousand times slower on the transposed views that a 1x1
    convolution's output gives. fp32 GEMMs take such views at full speed."""
    return tensor.contiguous() if tensor.element_size() < 4 else tensor


def _add_product(total, left, right):
    """total += left @ right, in place when the dtypes allow it."""
    if left.dtype == right.dtype == total.dtype:
        total.baddbmm_(left, right)
    else:
        total += torch.bmm(left.to(right.dtype), right).to(total.dtype)


def _forward_chunks(query, key, value, keep_logsumexp):
    """softmax(q k^T) v by chunks of query rows, and each row's log-sum-exp
    when the backward pass will need it. Plain tensor ops, so inference and
    export (ONNX, torch.export) trace it without the autograd Function."""
    batch, positions, _ = query.shape
    rows = _chunk_rows(batch, positions)
    key_t = key.transpose(1, 2)
    out = value.new_empty(batch, positions, value.shape[-1])
    logsumexp = query.new_empty(batch, positions, 1, dtype=_softmax_dtype(query.dtype))
    for start in range(0, positions, rows):
        chunk = slice(start, start + rows)
        scores = torch.bmm(query[:, chunk], key_t).to(logsumexp.dtype)
        probs = torch.softmax(scores, dim=-1)
        if keep_logsumexp:
            # max(P) = exp(max(S) - logsumexp), and max(P) >= 1/N never underflows.
            logsumexp[:, chunk] = scores.amax(-1, keepdim=True) - probs.amax(-1, keepdim=True).log()
        out[:, chunk] = torch.bmm(probs.to(value.dtype), value)
    return out, logsumexp


class _ChunkedAttention(torch.autograd.Function):
    """softmax(q k^T) v over chunks of rows; keeps no N x N matrix for backward."""

    @staticmethod
    def forward(ctx, query, key, value):
        out, logsumexp = _forward_chunks(query, key, value, keep_logsumexp=True)
        ctx.save_for_backward(query, key, value, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, out, logsumexp = ctx.saved_tensors
        batch, positions, _ = query.shape
        rows = _chunk_rows(batch, positions)
        accumulate = logsumexp.dtype
        grad_out = _operand(grad_out.to(value.dtype))
        # d(softmax): dS = P * (dP - rowsum(dO * O)), FlashAttention-2 eq. (4);
        # the row sums by chunks, so no second (B, N, C) buffer is needed.
        delta = logsumexp.new_empty(batch, positions, 1)
        for start in range(0, positions, rows):
            chunk = slice(start, start + rows)
            product = grad_out[:, chunk].to(accumulate) * out[:, chunk].to(accumulate)
            delta[:, chunk] = product.sum(-1, keepdim=True)
        # Loop over chunks of keys, so each chunk's dK and dV are written once
        # and only the narrow dQ (Cq = C/8 channels) is accumulated.
        grad_query = query.new_zeros(query.shape, dtype=accumulate)
        grad_key, grad_value = torch.empty_like(key), torch.empty_like(value)
        for start in range(0, positions, rows):
            keys = slice(start, start + rows)
            scores = torch.bmm(query, key[:, keys].transpose(1, 2)).to(accumulate)
            probs = scores.sub_(logsumexp).exp_()  # (B, N, rows) of the softmax
            torch.bmm(probs.transpose(1, 2).to(value.dtype), grad_out, out=grad_value[:, keys])
            grad_scores = torch.bmm(grad_out, value[:, keys].transpose(1, 2)).to(accumulate)
            grad_scores = grad_scores.sub_(delta).mul_(probs).to(query.dtype)
            torch.bmm(grad_scores.transpose(1, 2), query, out=grad_key[:, keys])
            _add_product(grad_query, grad_scores, key[:, keys])
        return grad_query.to(query.dtype), grad_key, grad_value


def fused_position_attention(query, key, value, backends=(SDPBackend.EFFICIENT_ATTENTION,)):
    """softmax(q k^T) v through `scaled_dot_product_attention` restricted to
    `backends` (scale 1, as DANet); raises RuntimeError where none of them
    takes these inputs."""
    with sdpa_kernel(list(backends)):
        out = F.scaled_dot_product_attention(
            query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1), scale=1.0)
    return out.squeeze(1)


# The padded width's multiple: an AMX tile row holds 16 bf16 values.
_FLASH_WIDTH_MULTIPLE = 16
# The widest value that trains through the flash kernel: measured faster at
# 67 channels (AinnoSeg-W18-Small), about even at 128 (DANet-R18) and 180
# (AinnoSeg-W48), where its closer result decides, and slower at 512 (DANet-R50).
_FLASH_TRAINING_MAX_CHANNELS = 256


def cpu_has_amx_tiles():
    """Whether this CPU has AMX tiles, where the CPU flash kernel pays off."""
    is_supported = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(is_supported and is_supported())


def flash_position_attention(query, key, value):
    """softmax(q k^T) v through SDPA's flash kernel (scale 1, as DANet), which
    takes one width for query, key and value: all three are zero-padded to the
    value's width rounded up to `_FLASH_WIDTH_MULTIPLE`. Zero columns add
    nothing to q k^T, and the output's padded columns are dropped. Raises
    RuntimeError where the kernel does not take these inputs."""
    channels = value.shape[-1]
    width = -(-channels // _FLASH_WIDTH_MULTIPLE) * _FLASH_WIDTH_MULTIPLE
    padded = [F.pad(t, (0, width - t.shape[-1])).unsqueeze(1) for t in (query, key, value)]
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = F.scaled_dot_product_attention(*padded, scale=1.0)
    return out.squeeze(1)[..., :channels]


def position_attention(query, key, value):
    """Exactly `naive_position_attention`, without the N x N map.

    Args:
        query, key: (B, N, Cq). value: (B, N, C). Any float dtype; the softmax
            runs in fp32.
    Returns:
        (B, N, C) in value's dtype.
    """
    dtype = torch.promote_types(torch.promote_types(query.dtype, key.dtype), value.dtype)
    if torch.is_autocast_enabled(query.device.type):
        dtype = torch.get_autocast_dtype(query.device.type)
    query, key, value = (_operand(t.to(dtype)) for t in (query, key, value))
    training = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    with torch.autocast(query.device.type, enabled=False):
        if query.is_cuda:
            try:
                return fused_position_attention(query, key, value)
            except RuntimeError:  # no fused kernel for these shapes or this card
                pass
        elif query.element_size() < 4 and cpu_has_amx_tiles() and not (
                training and value.shape[-1] > _FLASH_TRAINING_MAX_CHANNELS):
            try:
                return flash_position_attention(query, key, value)
            except RuntimeError:  # a build without the CPU flash kernel
                pass
        if training:
            return _ChunkedAttention.apply(query, key, value)
        return _forward_chunks(query, key, value, keep_logsumexp=False)[0]


class PositionAttention(nn.Module):
    """DANet's PAM: out = gamma * attention(V) + x, gamma starting at 0.

    Args:
        channels: input and output channels C; query and key use C // 8.
        naive: use the materialised formula (for comparisons and tests only).
    """

    def __init__(self, channels, naive=False):
        super().__init__()
        key_channels = max(1, channels // 8)
        self.query_conv = nn.Conv2d(channels, key_channels, 1)
        self.key_conv = nn.Conv2d(channels, key_channels, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.attend = naive_position_attention if naive else position_attention

    def forward(self, x):
        batch, channels, height, width = x.shape
        query = self.query_conv(x).flatten(2).transpose(1, 2)
        key = self.key_conv(x).flatten(2).transpose(1, 2)
        value = self.value_conv(x).flatten(2).transpose(1, 2)
        out = self.attend(query, key, value)
        out = out.transpose(1, 2).reshape(batch, channels, height, width)
        return torch.addcmul(x, self.gamma, out)  # gamma * out + x in one buffer


CAM_ENERGIES = ("sum", "mean")


class ChannelAttention(nn.Module):
    """DANet's CAM: C x C channel affinity, max(energy) - energy, gamma from 0.

    Args:
        energy: "sum", DANet's energy: the channel products summed over all N
            positions, in the autocast dtype. Its scale grows with N, so the
            softmax sharpens with the image size (5,120 positions in a 256x320
            crop at stride 4, 46,080 at scale 2.0 of a 360x480 frame).
            "mean": the same products averaged over the positions, so the
            attention does not depend on the image size, and the bf16
            rounding of the energy (about 2**-9 of its value) does not grow
            with it.
    """

    def __init__(self, energy="sum"):
        super().__init__()
        if energy not in CAM_ENERGIES:
            raise ValueError(f"cam energy {energy!r} is not one of {list(CAM_ENERGIES)}")
        self.energy = energy
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        batch, channels, height, width = x.shape
        flat = x.flatten(2)
        energy = torch.bmm(flat, flat.transpose(1, 2)).float()
        if self.energy == "mean":
            energy = energy / (height * width)
        energy = energy.amax(dim=-1, keepdim=True) - energy
        attention = torch.softmax(energy, dim=-1).to(flat.dtype)
        out = torch.bmm(attention, flat).view(batch, channels, height, width)
        return torch.addcmul(x, self.gamma, out)
