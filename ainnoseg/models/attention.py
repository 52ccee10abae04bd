"""DANet's position and channel attention (Fu et al. 2019, arXiv 1809.02983).

The position attention (PAM) of DANet multiplies an N x N softmax map, N = H*W,
with the value features. Materialised, that map is 1.1 GB per 130x130 feature
map in fp32 and 27 GB at the paper's largest scale. `position_attention`
computes the same numbers over chunks of query rows and recomputes each chunk
in the backward pass (as FlashAttention does), so memory stays O(N * C).

Why not `scaled_dot_product_attention`: DANet's query/key width (C/8) differs
from its value width (C), and on the CPU SDPA then falls back to its math
kernel, which builds the whole N x N matrix. Padding q/k or splitting v into
heads reaches the flash kernel but multiplies the query-key work by C/(C/8)=8.
"""

import torch
from torch import nn

# Rows of the attention map computed at once: elements per chunk, about 16 MB
# of fp32. Large enough for efficient matrix products, small enough for cache.
_CHUNK_ELEMENTS = 1 << 22


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
    return max(16, _CHUNK_ELEMENTS // max(1, batch * positions))


def _softmax_dtype(dtype):
    """fp32 for half types, else the input's own (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def _chunk_probabilities(query_chunk, key_t, logsumexp_chunk):
    """Softmax rows of one chunk from a known log-sum-exp."""
    scores = torch.bmm(query_chunk, key_t).to(logsumexp_chunk.dtype)
    return scores.sub_(logsumexp_chunk.unsqueeze(-1)).exp_()


def _add_product(total, left, right):
    """total += left @ right, in place when the dtypes allow it."""
    if left.dtype == right.dtype == total.dtype:
        total.baddbmm_(left, right)
    else:
        total += torch.bmm(left.to(right.dtype), right).to(total.dtype)


class _ChunkedAttention(torch.autograd.Function):
    """softmax(q k^T) v over chunks of query rows; saves only the log-sum-exp."""

    @staticmethod
    def forward(ctx, query, key, value):
        batch, positions, _ = query.shape
        rows = _chunk_rows(batch, positions)
        key_t = key.transpose(1, 2)
        out = value.new_empty(batch, positions, value.shape[-1])
        logsumexp = query.new_empty(batch, positions, dtype=_softmax_dtype(query.dtype))
        for start in range(0, positions, rows):
            chunk = slice(start, start + rows)
            scores = torch.bmm(query[:, chunk], key_t).to(logsumexp.dtype)
            row_max = scores.amax(dim=-1, keepdim=True)
            probs = scores.sub_(row_max).exp_()
            row_sum = probs.sum(dim=-1, keepdim=True)
            probs.div_(row_sum)
            logsumexp[:, chunk] = (row_max + row_sum.log()).squeeze(-1)
            torch.bmm(probs.to(value.dtype), value, out=out[:, chunk])
        ctx.save_for_backward(query, key, value, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, out, logsumexp = ctx.saved_tensors
        batch, positions, _ = query.shape
        rows = _chunk_rows(batch, positions)
        grad_out = grad_out.to(value.dtype)
        key_t, value_t = key.transpose(1, 2), value.transpose(1, 2)
        # d(softmax): dS = P * (dP - rowsum(dO * O)), see FlashAttention-2 eq. (4).
        accumulate = logsumexp.dtype
        delta = (grad_out.to(accumulate) * out.to(accumulate)).sum(-1)
        grad_query = torch.empty_like(query)
        grad_key = torch.zeros(key.shape, dtype=accumulate)
        grad_value = torch.zeros(value.shape, dtype=accumulate)
        for start in range(0, positions, rows):
            chunk = slice(start, start + rows)
            probs = _chunk_probabilities(query[:, chunk], key_t, logsumexp[:, chunk])
            _add_product(grad_value, probs.transpose(1, 2), grad_out[:, chunk])
            grad_scores = torch.bmm(grad_out[:, chunk], value_t).to(accumulate)
            grad_scores.sub_(delta[:, chunk].unsqueeze(-1)).mul_(probs)
            grad_scores = grad_scores.to(query.dtype)
            torch.bmm(grad_scores, key, out=grad_query[:, chunk])
            _add_product(grad_key, grad_scores.transpose(1, 2), query[:, chunk])
        return grad_query, grad_key.to(key.dtype), grad_value.to(value.dtype)


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
    query, key, value = (t.to(dtype) for t in (query, key, value))
    with torch.autocast(query.device.type, enabled=False):
        return _ChunkedAttention.apply(query, key, value)


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
        return self.gamma * out + x


class ChannelAttention(nn.Module):
    """DANet's CAM: C x C channel affinity, max(energy) - energy, gamma from 0."""

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        batch, channels, height, width = x.shape
        flat = x.flatten(2)
        energy = torch.bmm(flat, flat.transpose(1, 2)).float()
        energy = energy.amax(dim=-1, keepdim=True) - energy
        attention = torch.softmax(energy, dim=-1).to(flat.dtype)
        out = torch.bmm(attention, flat).view(batch, channels, height, width)
        return self.gamma * out + x
