"""In-process interleaved A/B of the torch static trainer's speed paths (docs/performance.md).

``python -m benchmarks.ab_speed_paths MODEL ARMS PAIRS STEPS SEEDS [common]``: trains SEEDS
seeds of MODEL on the throughput protocol once per arm and pair, in alternating order, and sums
the main thread's CPU time in ``Trainer._train`` (the data thread and other processes
excluded, so a loaded machine disturbs it less than wall time). Arms: ``A`` (the trainer
as it is), ``public_adam`` (``torch.optim.Adam(fused=True)`` instead of ``ReplicaAdam``),
``no_shortcuts`` (autograd's loss and engine instead of the by-hand nalu step and the MSE
gradient). The rule a path must pass and the measured ratios are in docs/performance.md.
"""
from __future__ import annotations

import sys
import time

import numpy as np


def _plain_steps(trainer, xs, ys, lams, log_xs) -> None:
    """Every step through autograd's loss and engine."""
    regularised = [j for j, u in enumerate(trainer.net.units) if u.spec.regularised]
    for s in range(xs.shape[0]):
        x, log_x, y = xs[s], None if log_xs is None else log_xs[s], ys[s]
        trainer.opt.zero_grad(set_to_none=True)
        loss = ((trainer.net(x, log_x) - y) ** 2).mean(dim=(-2, -1))
        for j in regularised:
            if lams[s, j] > 0:
                loss = loss + float(lams[s, j]) * trainer.net.units[j].regulariser()
        loss.sum().backward()
        trainer.opt.step()
        trainer.net.project_()


def main(argv: list[str]) -> int:
    import torch

    from benchmarks import runner, suite
    from benchmarks.throughput import PROTOCOL
    from models.torch import train

    model, arms = argv[0], argv[1].split(",")
    pairs, steps, seeds = int(argv[2]), int(argv[3]), int(argv[4])
    common = len(argv) > 5
    arm, spent = ["A"], {a: [] for a in arms}
    make, step = train.Trainer.__init__, train.Trainer._train

    def patched_init(self, layers, lr, **options):
        make(self, layers, lr, **options)
        if arm[0] == "public_adam":
            self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, fused=True)

    def timed_train(self, xs, ys, lams, log_xs):
        began = time.thread_time()
        if arm[0] == "no_shortcuts":
            _plain_steps(self, xs, ys, lams, log_xs)
        else:
            step(self, xs, ys, lams, log_xs)
        spent[arm[0]][-1] += time.thread_time() - began

    specs = suite.expand(["static_arithmetic"], [model], ["torch"], list(range(seeds)), PROTOCOL,
                         {"op": ["add"]}, common_data=common, steps=steps)
    train.Trainer.__init__, train.Trainer._train = patched_init, timed_train
    try:
        for p in range(pairs):
            for a in arms if p % 2 == 0 else arms[::-1]:
                arm[0] = a
                spent[a].append(0.0)
                runner.run_group(specs)
    finally:
        train.Trainer.__init__, train.Trainer._train = make, step
    base = float(np.median(spent[arms[0]]))
    for a in arms:
        print(f"{model} {'common' if common else 'own'} {a}: training CPU s per run "
              f"{[round(x, 4) for x in spent[a]]}, median {np.median(spent[a]):.4f}, "
              f"ratio to {arms[0]} {np.median(spent[a]) / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
