"""CNN + recurrent core for the digit-sequence tasks in PyTorch (loop: models/image_sequence.py)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.cnn import arch
from models.torch import cells, units
from models.torch.base import TorchTrainer


class CNN(nn.Module):
    """`models.cnn.cnn_forward` in torch: kernels (k, k, c_in, c_out), maps
    flattened as (H, W, C) like TensorFlow's."""

    def __init__(self, params: dict[str, np.ndarray], side: int):
        super().__init__()
        self.pad = 0 if arch(side)[3] == "valid" else arch(side)[0] // 2
        self.p = nn.ParameterDict({k: nn.Parameter(torch.tensor(np.asarray(v),
                                                                dtype=torch.float32))
                                   for k, v in params.items()})

    def forward(self, images):  # (N, s, s) -> (N, out)
        p = self.p
        x = images.unsqueeze(1)
        for j in (1, 2):
            x = F.conv2d(x, p[f"conv{j}_W"].permute(3, 2, 0, 1), p[f"conv{j}_b"],
                         padding=self.pad)
            x = F.max_pool2d(F.relu(x), 2)
        x = F.relu(x.permute(0, 2, 3, 1).flatten(1) @ p["fc1_W"] + p["fc1_b"])
        return x @ p["fc2_W"] + p["fc2_b"]

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in self.p.items()}


class Net(nn.Module):
    """images (B, T, s, s) -> CNN per image -> cell over T -> readout -> (B, out)."""

    def __init__(self, params: dict[str, dict[str, np.ndarray]], cell: str, side: int):
        super().__init__()
        self.cnn = CNN(params["cnn"], side)
        self.cell = cells.make(cell, params["cell"])
        self.readout = units.make("linear", params["readout"]) if params["readout"] else None

    def forward(self, images):
        b, t = images.shape[:2]
        x = self.cnn(images.reshape(b * t, *images.shape[2:])).reshape(b, t, -1)
        state = self.cell.zero_state(b)
        h = state[0]
        for i in range(t):
            h, state = self.cell(x[:, i], state)
        return self.readout(h) if self.readout is not None else h


class Trainer(TorchTrainer):
    """Adam on one seed's network; the training images live on the device once and each
    step gathers its (B, T) images by index."""

    def __init__(self, params, cell: str, images: np.ndarray, lr: float, device: str = "cpu",
                 threads: int | None = 1):
        super().__init__(device, threads)
        self.net = Net(params, cell, images.shape[-1]).to(self.device)
        self.images = torch.tensor(np.asarray(images, dtype=np.float32), device=self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def train(self, idx: np.ndarray, ys: np.ndarray, lams: np.ndarray) -> None:
        """len(idx) steps: idx (S, B, T) training-image indices, ys (S, B, out), lams (S,)."""
        regularised = self.net.cell.regulariser() is not None
        with self.threading():
            idx = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)
            ys = torch.as_tensor(np.asarray(ys, dtype=np.float32), device=self.device)
            for s in range(idx.shape[0]):
                loss = ((self.net(self.images[idx[s]]) - ys[s]) ** 2).mean()
                if regularised and lams[s] > 0:
                    loss = loss + float(lams[s]) * self.net.cell.regulariser()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.net.cell.project_()

    @torch.no_grad()
    def features(self, images: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """The CNN's outputs for images (N, s, s), float64."""
        out = [self.net.cnn(torch.tensor(np.asarray(images[i:i + chunk], np.float32),
                                            device=self.device)).double().cpu().numpy()
               for i in range(0, len(images), chunk)]
        return np.concatenate(out)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """The whole network on sequences of images (B, T, s, s) (for tests)."""
        x = torch.as_tensor(np.asarray(images, np.float32), device=self.device)
        return self.net(x).double().cpu().numpy()

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return self.state()

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        cell = {k: np.asarray(v, np.float64) for k, v in self.net.cell.get_params().items()}
        readout = ({k: np.asarray(v, np.float64) for k, v in self.net.readout.get_params().items()}
                   if self.net.readout is not None else {})
        return {"cnn": self.net.cnn.get_params(), "cell": cell, "readout": readout}
