"""The yardstick of `benchmarks.throughput`: the static task trained the conventional way.

One seed after another, one eager PyTorch module per seed, a fresh batch of 128 every
step, an evaluation every 1,000 steps on 10,000 interpolation (U[1, 2]) and 10,000
extrapolation (U[2, 6]) examples, the best interpolation error kept: what public reference
code for these units does. It uses none of the suite's code, so its rate is what a
researcher's own loop would get on the same machine.

    python -m benchmarks.plain_loop --unit nalu --op add --steps 3000 --seeds 2

The last line printed is ``seed_steps_per_s=<float>``: steps summed over seeds, divided
by the wall time of the loops (imports excluded).
"""
from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

INPUTS, SUBSET, OVERLAP = 100, 25, 13  # a and b: 25 neighbouring inputs, 13 of them shared
EVAL_EVERY, EVAL_SIZE, BATCH = 1000, 10_000, 128
OPS = {"add": torch.add, "mul": torch.mul}


class Nalu(nn.Module):
    """g * (x W) + (1 - g) * exp(log(|x| + eps) W), W = tanh(W_hat) * sigmoid(M_hat)."""

    def __init__(self, n_in: int, n_out: int, eps: float = 1e-7):
        super().__init__()
        self.eps = eps
        self.w_hat, self.m_hat, self.gate = (
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_in, n_out))) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.tanh(self.w_hat) * torch.sigmoid(self.m_hat)
        g = torch.sigmoid(x @ self.gate)
        return g * (x @ w) + (1 - g) * torch.exp(torch.log(x.abs() + self.eps) @ w)


class Nau(nn.Module):
    """x W with W clamped to [-1, 1], initialised U(-r, r), r = sqrt(3 / (2 (n_in + n_out)))."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        bound = math.sqrt(1.5 / (n_in + n_out))
        self.w = nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w.clamp(-1.0, 1.0)


class Nmu(nn.Module):
    """prod_i (w_i x_i + 1 - w_i) with W clamped to [0, 1], initialised U[0.25, 0.75]."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.w = nn.Parameter(torch.empty(n_in, n_out).uniform_(0.25, 0.75))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.w.clamp(0.0, 1.0)
        return (x.unsqueeze(-1) * w + (1 - w)).prod(dim=-2)


NETWORKS = {"nalu": (Nalu, Nalu), "nau-nmu": (Nau, Nmu)}


def draw(gen: torch.Generator, offset: int, op: str, n: int, low: float, high: float):
    """n inputs from U[low, high) and their targets op(a, b)."""
    x = torch.empty(n, INPUTS).uniform_(low, high, generator=gen)
    a = x[:, offset:offset + SUBSET].sum(1, keepdim=True)
    b = x[:, offset + OVERLAP:offset + OVERLAP + SUBSET].sum(1, keepdim=True)
    return x, OPS[op](a, b)


def train_seed(seed: int, unit: str, op: str, steps: int) -> tuple[float, float]:
    """One seed's run: (interpolation, extrapolation) MSE at its best evaluation."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    offset = int(torch.randint(0, INPUTS - SUBSET - OVERLAP + 1, (), generator=gen))
    first, second = NETWORKS[unit]
    net = nn.Sequential(first(INPUTS, 2), second(2, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    tests = [draw(gen, offset, op, EVAL_SIZE, *r) for r in ((1.0, 2.0), (2.0, 6.0))]
    best = (math.inf, math.inf)
    for step in range(1, steps + 1):
        x, y = draw(gen, offset, op, BATCH, 1.0, 2.0)
        loss = (net(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % EVAL_EVERY == 0:
            with torch.no_grad():
                errors = tuple(float((net(x) - y).pow(2).mean()) for x, y in tests)
            if errors[0] < best[0]:
                best = errors
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.plain_loop",
        description="Train the static task one seed after another in plain PyTorch and "
                    "print seed_steps_per_s (the yardstick of benchmarks.throughput).")
    parser.add_argument("--unit", default="nalu", choices=sorted(NETWORKS),
                        help="the network: NALU -> NALU, or NAU -> NMU (default nalu)")
    parser.add_argument("--op", default="add", choices=sorted(OPS), help="default add")
    parser.add_argument("--steps", type=int, default=3000, help="steps per seed (3000)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 (2)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.seeds < 1:
        parser.error(f"--steps and --seeds must be at least 1 (got {args.steps}, {args.seeds})")
    start = time.perf_counter()
    for seed in range(args.seeds):
        interpolation, extrapolation = train_seed(seed, args.unit, args.op, args.steps)
        print(f"seed {seed}: interpolation mse {interpolation:.4g}, "
              f"extrapolation mse {extrapolation:.4g}")
    print(f"seed_steps_per_s={args.seeds * args.steps / (time.perf_counter() - start):.1f}")


if __name__ == "__main__":
    main()
