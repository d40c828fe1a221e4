"""CNN + recurrent core of the digit-sequence tasks in PyTorch, R replicas (seeds) as one
program: every parameter has a leading replica axis and each replica reads its own images
(loop: models/image_sequence.py; the core: models/digit_net.py)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.cnn import arch
from models.digit_net import Z_ADDITIVE, Core
from models.torch import cells, units
from models.torch.base import TorchTrainer


class CNN(nn.Module):
    """`models.cnn.cnn_forward` in torch for R replicas: kernels (R, k, k, c_in, c_out),
    maps flattened as (H, W, C) like TensorFlow's. The convolutions run one replica after
    another (a grouped convolution measured no faster on CPU), the dense layers as one
    batched product."""

    def __init__(self, params: dict[str, np.ndarray], side: int):
        super().__init__()
        self.pad = 0 if arch(side)[3] == "valid" else arch(side)[0] // 2
        self.p = nn.ParameterDict({k: nn.Parameter(torch.tensor(np.asarray(v),
                                                                dtype=torch.float32))
                                   for k, v in params.items()})
        self.replicas = self.p["conv1_W"].shape[0]

    def forward(self, images):  # (R, N, s, s) -> (R, N, out)
        p, maps = self.p, []
        for r in range(self.replicas):
            x = images[r].unsqueeze(1)
            for j in (1, 2):
                x = F.conv2d(x, p[f"conv{j}_W"][r].permute(3, 2, 0, 1), p[f"conv{j}_b"][r],
                             padding=self.pad)
                x = F.max_pool2d(F.relu(x), 2)
            maps.append(x.permute(0, 2, 3, 1).flatten(1))
        x = F.relu(torch.baddbmm(p["fc1_b"].unsqueeze(1), torch.stack(maps), p["fc1_W"]))
        return torch.baddbmm(p["fc2_b"].unsqueeze(1), x, p["fc2_W"])

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in self.p.items()}


class Net(nn.Module):
    """images (R, B, T, s, s) -> CNN per image -> core over T (`models.digit_net.Core`)."""

    def __init__(self, params: dict[str, dict[str, np.ndarray]], core: Core, side: int):
        super().__init__()
        self.core = core
        self.cnn = CNN(params["cnn"], side)
        self.cell = cells.make(core.cell, params["cell"]) if core.has_cell else None
        self.readout = units.make("linear", params["readout"]) if params["readout"] else None

    def forward(self, images, every: bool = False):
        """Outputs (R, B, T, n) after every image, or (R, B, n) after the last; and R_z per
        replica (R,) where the core has it on, else None."""
        r, b, t = images.shape[:3]
        x = self.cnn(images.reshape(r, b * t, *images.shape[3:])).reshape(r, b, t, -1)
        core = self.core
        if self.cell is None:
            state = (x.new_full((r, b, x.shape[-1]), core.initial),)
        else:
            state = self.cell.zero_state(b)
            state = tuple(s + core.initial for s in state) if core.initial else state
        outs, inputs = [], 0.0
        for i in range(t):
            x_t = x[:, :, i]
            if core.simplification == "pass-through":
                h = x_t
            elif core.simplification == "solved-accumulator":
                h = state[0] + x_t if core.accumulate == "sum" else state[0] * x_t
                state = (h,)
            else:
                if core.z:  # the unit's input [x_t, h_{t-1}], averaged over B and T
                    inputs = inputs + torch.cat([x_t, state[0]], -1).mean(dim=1)
                h, state = self.cell(x_t, state)
                if self.readout is not None:
                    h = self.readout(h)
            outs.append(h)
        y = torch.stack(outs, dim=2) if every else outs[-1]
        return y, (self.z_penalty(inputs / t) if core.z else None)

    def z_penalty(self, x_mean):
        """`models.digit_net.z_penalty` on the unit's weight."""
        w = self.cell.unit.weight()
        x = x_mean.unsqueeze(-1)
        return (((1 - w.abs()) * x ** 2) if self.core.unit in Z_ADDITIVE
                else ((1 - w) * (1 - x) ** 2)).mean(dim=(-2, -1))


class Trainer(TorchTrainer):
    """One Adam over every replica (element-wise, so each replica's steps are its own); the
    loss is summed over replicas. The training images live on the device once; each step
    gathers every replica's (B, T) images by index."""

    def __init__(self, params, core: Core, images: np.ndarray, lr: float, device: str = "cpu",
                 threads: int | None = 1):
        super().__init__(device, threads)
        self.core = core
        self.net = Net(params, core, images.shape[-1]).to(self.device)
        self.images = torch.tensor(np.asarray(images, dtype=np.float32), device=self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def train(self, idx: np.ndarray, ys: np.ndarray, lams: np.ndarray) -> None:
        """len(idx) steps: idx (S, R, B, T) training-image indices, ys (S, R, B, n) or with
        ``core.every`` (S, R, B, T, n), lams (S,) or per replica (S, R)."""
        cell = self.net.cell
        regularised = cell is not None and cell.regulariser() is not None
        with self.threading():
            idx = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)
            ys = torch.as_tensor(np.asarray(ys, dtype=np.float32), device=self.device)
            lams = np.asarray(lams, dtype=np.float32)
            for s in range(idx.shape[0]):
                pred, z = self.net(self.images[idx[s]], every=self.core.every)
                loss = ((pred - ys[s]) ** 2).mean(dim=tuple(range(1, pred.dim())))
                if regularised and (lams[s] > 0).any():
                    lam = float(lams[s]) if lams.ndim == 1 else self.tensor(lams[s])
                    loss = loss + lam * cell.regulariser()
                if z is not None:
                    loss = loss + self.core.z_weight * z
                self.opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                self.opt.step()
                if cell is not None:
                    cell.project_()

    @torch.no_grad()
    def features(self, images: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Every replica's CNN outputs for shared images (N, s, s): (R, N, out), float64."""
        out = []
        with self.threading():
            for i in range(0, len(images), chunk):
                x = torch.tensor(np.asarray(images[i:i + chunk], np.float32), device=self.device)
                x = x.expand(self.net.cnn.replicas, *x.shape)
                out.append(self.net.cnn(x).double().cpu().numpy())
        return np.concatenate(out, axis=1)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Outputs after every image of the sequences (R, B, T, s, s): (R, B, T, n) (tests)."""
        x = torch.as_tensor(np.asarray(images, np.float32), device=self.device)
        with self.threading():
            return self.net(x, every=True)[0].double().cpu().numpy()

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return self.state()

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Every parameter, float64, replica axis first: {"cnn", "cell", "readout"}."""
        net = self.net
        return {"cnn": net.cnn.get_params(),
                "cell": ({k: np.asarray(v, np.float64) for k, v in net.cell.get_params().items()}
                         if net.cell is not None else {}),
                "readout": ({k: np.asarray(v, np.float64)
                             for k, v in net.readout.get_params().items()}
                            if net.readout is not None else {})}
