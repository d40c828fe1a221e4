"""The digit tasks' CNN in numpy: its architecture per image side, initialisation (Glorot,
or PyTorch's default as [NAU] leaves it) and forward pass, the specification both
frameworks' CNNs are tested against (the loop around it: `models.image_sequence`)."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ARCHS = {  # image side -> (kernel, (channels 1, channels 2), dense width, padding)
    28: (5, (20, 50), 500, "valid"),
    8: (3, (8, 16), 64, "same"),
}


def arch(side: int) -> tuple[int, tuple[int, int], int, str]:
    if side not in ARCHS:
        raise ValueError(f"no CNN for {side}x{side} images; known sides: {sorted(ARCHS)}")
    return ARCHS[side]


def _flat_size(side: int) -> int:
    k, (_, c2), _, pad = arch(side)
    s = side
    for _ in range(2):
        s = (s if pad == "same" else s - k + 1) // 2
    return s * s * c2


def _glorot(rng, fan_in, fan_out, shape):
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=shape)


def _torch_default(rng, fan_in, shape):
    """PyTorch's Conv2d / Linear ``reset_parameters``: kaiming_uniform(a=sqrt(5)) is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the bias the same."""
    r = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-r, r, size=shape)


INITS = ("glorot", "torch")


def cnn_init(side: int, n_out: int, rng: np.random.Generator,
             scheme: str = "glorot") -> dict[str, np.ndarray]:
    """One network's parameters: ``glorot`` (Glorot uniform weights, zero biases; the suite's)
    or ``torch`` (PyTorch's defaults, which [NAU]'s CNN keeps: weights and biases
    U(+-1/sqrt(fan_in)))."""
    k, (c1, c2), dense, _ = arch(side)
    flat = _flat_size(side)
    if scheme == "torch":
        out = {}
        for name, fan_in, shape in (("conv1", k * k, (k, k, 1, c1)),
                                    ("conv2", k * k * c1, (k, k, c1, c2)),
                                    ("fc1", flat, (flat, dense)), ("fc2", dense, (dense, n_out))):
            out[f"{name}_W"] = _torch_default(rng, fan_in, shape)
            out[f"{name}_b"] = _torch_default(rng, fan_in, shape[-1:])
        return out
    if scheme != "glorot":
        raise ValueError(f"bad CNN initialisation {scheme!r}; valid: {', '.join(INITS)}")
    return {
        "conv1_W": _glorot(rng, k * k, k * k * c1, (k, k, 1, c1)), "conv1_b": np.zeros(c1),
        "conv2_W": _glorot(rng, k * k * c1, k * k * c2, (k, k, c1, c2)),
        "conv2_b": np.zeros(c2),
        "fc1_W": _glorot(rng, flat, dense, (flat, dense)), "fc1_b": np.zeros(dense),
        "fc2_W": _glorot(rng, dense, n_out, (dense, n_out)), "fc2_b": np.zeros(n_out),
    }


def _conv(x, w, b, pad):
    """x (R, N, H, W, C) with kernels w (R, k, k, C, O) and biases b (R, O)."""
    k = w.shape[1]
    if pad == "same":
        p = k // 2
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p), (0, 0)))
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # (R, N, H', W', C, k, k)
    return np.einsum("rnhwcij,rijco->rnhwo", windows, w, optimize=True) + b[:, None, None, None]


def _pool(x):
    r, n, h, w, c = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(r, n, h // 2, 2, w // 2, 2, c).max(axis=(3, 5))


def stack(replicas: list[dict]) -> dict:
    """One nest of dicts of arrays per replica -> one nest with the replica axis first."""
    first = replicas[0]
    if isinstance(first, dict):
        return {k: stack([r[k] for r in replicas]) for k in first}
    return np.stack([np.asarray(r) for r in replicas])


def cnn_forward(p: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """The CNN in numpy (the spec both frameworks are tested against): one replica's
    parameters on images (N, s, s) -> (N, out), or R replicas' (every array with a leading
    replica axis) each on its own images (R, N, s, s) -> (R, N, out)."""
    one = np.ndim(p["conv1_W"]) == 4
    if one:
        p, images = {k: np.asarray(v)[None] for k, v in p.items()}, np.asarray(images)[None]
    pad = arch(images.shape[-1])[3]
    x = np.asarray(images, dtype=np.float64)[..., None]
    x = _pool(np.maximum(_conv(x, p["conv1_W"], p["conv1_b"], pad), 0.0))
    x = _pool(np.maximum(_conv(x, p["conv2_W"], p["conv2_b"], pad), 0.0))
    x = np.maximum(x.reshape(*x.shape[:2], -1) @ p["fc1_W"] + p["fc1_b"][:, None], 0.0)
    out = x @ p["fc2_W"] + p["fc2_b"][:, None]
    return out[0] if one else out
