import pytest
import torch

from ainnoseg.models import attention
from ainnoseg.models.attention import (
    ChannelAttention, PositionAttention, naive_position_attention, position_attention)


@pytest.fixture
def small_chunks(monkeypatch):
    """Force many chunks, including a ragged last one, on small inputs."""
    monkeypatch.setattr(attention, "_CHUNK_ELEMENTS", 700)


def _inputs(batch, positions, key_channels, channels, dtype=torch.float32):
    return [torch.randn(batch, positions, c, dtype=dtype, requires_grad=True)
            for c in (key_channels, key_channels, channels)]


@pytest.mark.parametrize("batch, positions", [(1, 130), (2, 257)])
def test_position_attention_equals_the_naive_formula_with_gradients(batch, positions, small_chunks):
    inputs = _inputs(batch, positions, 8, 64)
    grad_out = torch.randn(batch, positions, 64)
    ours = position_attention(*inputs)
    ours_grads = torch.autograd.grad(ours, inputs, grad_out)
    naive = naive_position_attention(*inputs)
    naive_grads = torch.autograd.grad(naive, inputs, grad_out)
    torch.testing.assert_close(ours, naive, rtol=1e-5, atol=1e-5)
    for mine, reference in zip(ours_grads, naive_grads):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-5)


def test_position_attention_passes_gradcheck_in_float64(small_chunks):
    inputs = _inputs(2, 37, 3, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(position_attention, inputs)


def test_position_attention_uses_no_scaling_and_large_logits_stay_finite(small_chunks):
    query, key, value = (t.detach() for t in _inputs(1, 50, 4, 6))
    query = query * 30  # logits in the thousands: a naive exp() would overflow
    ours = position_attention(query, key, value)
    torch.testing.assert_close(ours, naive_position_attention(query, key, value))


def test_position_attention_under_bf16_autocast_is_close_to_fp32(small_chunks):
    query, key, value = (t.detach() for t in _inputs(1, 200, 8, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = position_attention(query, key, value)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), naive_position_attention(query, key, value),
                               rtol=0.05, atol=0.05)


def test_pam_module_matches_the_naive_module(small_chunks):
    ours, naive = PositionAttention(16), PositionAttention(16, naive=True)
    naive.load_state_dict(ours.state_dict())
    for module in (ours, naive):
        torch.nn.init.constant_(module.gamma, 0.7)
    x = torch.randn(2, 16, 9, 11)
    torch.testing.assert_close(ours(x), naive(x))


def test_attention_starts_as_identity():
    x = torch.randn(1, 16, 5, 6)
    torch.testing.assert_close(PositionAttention(16)(x), x)
    torch.testing.assert_close(ChannelAttention()(x), x)


def test_channel_attention_follows_danet():
    cam = ChannelAttention()
    torch.nn.init.constant_(cam.gamma, 0.5)
    x = torch.randn(2, 4, 3, 5)
    flat = x.flatten(2)
    energy = flat @ flat.transpose(1, 2)
    energy = energy.max(-1, keepdim=True)[0].expand_as(energy) - energy
    expected = 0.5 * (torch.softmax(energy, -1) @ flat).view_as(x) + x
    torch.testing.assert_close(cam(x), expected)


def test_position_attention_backward_keeps_gradients_on_the_inputs_device():
    """The backward pass allocates its buffers where the inputs live (a CPU
    buffer there broke training on CUDA); the meta device stands in for a GPU."""
    query, key, value = (torch.randn(2, 100, c, device="meta", requires_grad=True)
                         for c in (4, 4, 16))
    attention._ChunkedAttention.apply(query, key, value).sum().backward()
    assert {t.grad.device.type for t in (query, key, value)} == {"meta"}


def test_fused_path_computes_danets_formula_with_gradients():
    """The CUDA path's SDPA call (unscaled, value wider than query and key),
    checked here through SDPA's math backend."""
    query, key, value = _inputs(2, 130, 4, 24, dtype=torch.float64)
    fused = attention.fused_position_attention(
        query, key, value, backends=(attention.SDPBackend.MATH,))
    naive = naive_position_attention(query, key, value)
    torch.testing.assert_close(fused, naive)
    grads = torch.autograd.grad(fused.sum(), (query, key, value))
    expected = torch.autograd.grad(naive.sum(), (query, key, value))
    for ours, theirs in zip(grads, expected):
        torch.testing.assert_close(ours, theirs)


def test_fused_path_refuses_inputs_its_backends_cannot_take():
    query, key, value = _inputs(1, 64, 4, 8)
    with pytest.raises(RuntimeError):  # no memory-efficient kernel on the CPU
        attention.fused_position_attention(query, key, value)


def test_cpu_flash_path_computes_danets_formula_with_gradients():
    """Query and key narrower than the value, the value's width not a multiple
    of the padding's: the padded columns change nothing, in or out."""
    query, key, value = _inputs(2, 130, 4, 23)
    flash = attention.flash_position_attention(query, key, value)
    naive = naive_position_attention(query, key, value)
    torch.testing.assert_close(flash, naive, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(naive)
    grads = torch.autograd.grad(flash, (query, key, value), grad_out)
    expected = torch.autograd.grad(naive, (query, key, value), grad_out)
    for ours, theirs in zip(grads, expected):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_bf16_on_an_amx_cpu_takes_the_flash_kernel_and_fp32_the_chunks(monkeypatch):
    monkeypatch.setattr(attention, "cpu_has_amx_tiles", lambda: True)
    calls = []
    flash = attention.flash_position_attention
    monkeypatch.setattr(attention, "flash_position_attention",
                        lambda *inputs: calls.append(inputs[0].dtype) or flash(*inputs))
    query, key, value = _inputs(1, 300, 8, 67)
    truth = naive_position_attention(*(t.detach().double() for t in (query, key, value)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = position_attention(query, key, value)
    low.float().sum().backward()
    assert calls == [torch.bfloat16] and low.dtype == torch.bfloat16
    assert all(t.grad is not None and t.grad.dtype == torch.float32 for t in (query, key, value))
    torch.testing.assert_close(low.double(), truth, rtol=0.02, atol=0.02)
    position_attention(query, key, value)
    assert calls == [torch.bfloat16]  # fp32 took the chunked path


def test_training_with_a_wide_value_keeps_the_chunks_and_inference_takes_the_kernel(monkeypatch):
    monkeypatch.setattr(attention, "cpu_has_amx_tiles", lambda: True)
    calls = []
    flash = attention.flash_position_attention
    monkeypatch.setattr(attention, "flash_position_attention",
                        lambda *inputs: calls.append(inputs[2].shape[-1]) or flash(*inputs))
    wide = attention._FLASH_TRAINING_MAX_CHANNELS + 1
    query, key, value = _inputs(1, 40, 8, wide, dtype=torch.bfloat16)
    position_attention(query, key, value).sum().backward()
    assert calls == [] and value.grad is not None
    with torch.no_grad():
        position_attention(query, key, value)
    assert calls == [wide]


def test_bf16_on_a_cpu_without_amx_keeps_the_chunks(monkeypatch):
    """There the padded flash kernel is slower at every shape we run
    (benchmarks/pam_kernels.py on an AMD EPYC), so training and inference
    both take the chunks, with the same result as the formula."""
    monkeypatch.setattr(attention, "cpu_has_amx_tiles", lambda: False)
    monkeypatch.setattr(attention, "flash_position_attention",
                        lambda *inputs: pytest.fail("took the flash kernel"))
    query, key, value = _inputs(1, 300, 8, 67)
    truth = naive_position_attention(*(t.detach().double() for t in (query, key, value)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = position_attention(query, key, value)
    low.float().sum().backward()
    assert low.dtype == torch.bfloat16 and value.grad is not None
    torch.testing.assert_close(low.double(), truth, rtol=0.05, atol=0.05)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        position_attention(query, key, value)
