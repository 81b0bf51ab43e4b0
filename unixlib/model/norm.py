"""RMSNorm with a closed-form backward on CPU float32 (bitwise the same forward); bf16 inputs
are normalised in float32.

On the two-core CPUs of the smoke profile every extra elementwise kernel of autograd's RMSNorm
backward costs a thread barrier; the hand-written backward is 5-6x faster there. Parameters and
state-dict keys are those of ``torch.nn.RMSNorm``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _RMSNormCPU(torch.autograd.Function):
    """``x * rsqrt(mean(x^2) + eps) * w`` with the closed-form backward (float32 on CPU).

    The forward is the formula of PyTorch's CPU ``rms_norm`` (bitwise equal); its backward is
    ``dx = rstd * (g w - x_hat * mean(g w x_hat))``, ``dw = sum(g x_hat)``: a handful of passes
    instead of the ~10 elementwise kernels autograd chains through pow/mean/rsqrt/mul.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        x_hat = x * rstd
        ctx.save_for_backward(x_hat, rstd, weight)
        return x_hat * weight

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x_hat, rstd, weight = ctx.saved_tensors
        dx = dw = None
        if ctx.needs_input_grad[1]:
            dw = (grad * x_hat).flatten(0, -2).sum(0)
        if ctx.needs_input_grad[0]:
            gw = grad * weight
            dx = gw.addcmul_(x_hat, (gw * x_hat).mean(-1, keepdim=True), value=-1).mul_(rstd)
        return dx, dw, None


# input dtypes the CPU path normalises (in float32)
_CPU_FAST = (torch.float32, torch.bfloat16)


class RMSNorm(nn.RMSNorm):
    """``nn.RMSNorm`` (same parameters and values) with a faster backward for CPU float32.

    A bf16 input on CPU (a projection's output under bf16 autocast, e.g. the q/k norms) is
    normalised in float32 and cast back, as Llama / Qwen2 do: PyTorch's fused CPU kernel takes
    no bf16 input with a float32 weight and would fall back to the slow composite path.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu" and self.weight is not None and x.dtype in _CPU_FAST:
            eps = torch.finfo(torch.float32).eps if self.eps is None else self.eps
            out = _RMSNormCPU.apply(x.float(), self.weight.float(), eps)
            return out.to(x.dtype)
        return super().forward(x)
