"""The text-to-number loop, framework-free: embedding -> LSTM -> output unit, R seeds at once.

The network's parameters are made here in numpy (so a seed starts the same weights in
torch and tf); ``forward`` is their numpy specification, which both frameworks are
tested against. A framework supplies ``models/<fw>/text.py`` with
``Trainer(params, unit, lr, device, readout="every")``:
``train(tokens, lengths, targets, weights, lams)`` runs len(tokens) Adam steps,
``predict(tokens, lengths) -> (R, N, K)`` the values read (K = L, one per prefix, with
``readout="every"``; K = 1, the whole number's, with ``readout="last"``), ``params()``.
The loop is `models.engine.fit`, selecting on the validation numbers.

Seeds train vectorised: every parameter carries a leading replica axis R, the loss is
summed over replicas (each replica's gradient is its own) and Adam is elementwise.

The LSTM is the cell registry's (``reference.cell_step("lstm", ...)``, and
``models/<fw>/cells.make("lstm", params)``: gates i, f, g, o as torch.nn.LSTM, written
with replica-batched matmuls, which the frameworks' own LSTM layers lack).
"""
from __future__ import annotations

import numpy as np

from models import engine, reference, registry
from tasks.base import DATA_STREAM, INIT_STREAM


def init_params(task, unit: str, seeds: list[int]) -> dict[str, dict[str, np.ndarray]]:
    """Embedding, LSTM and output-unit parameters, stacked on a replica axis (float64).
    The task's ``forget_bias`` is added to the LSTM's forget-gate bias (TensorFlow's cell
    adds 1 to it in every step, which trains as a bias that starts 1 higher)."""
    vocab = len(task.vocabulary) + 1
    e, h = task.params["embedding_size"], task.params["hidden_size"]
    forget = slice(h, 2 * h)  # gate order i, f, g, o
    emb, lstm = [], []
    for s in seeds:
        rng = np.random.default_rng([s, INIT_STREAM, 0])
        table = rng.normal(0.0, 1.0, size=(vocab, e))
        table[0] = 0.0  # padding
        emb.append({"E": table})
        cell = reference.cell_init("lstm", e, h, np.random.default_rng([s, INIT_STREAM, 1]))
        cell["b"][forget] += task.param("forget_bias")
        lstm.append(cell)
    stack = lambda ps: {k: np.stack([p[k] for p in ps]) for k in ps[0]}  # noqa: E731
    out = registry.init_params(unit, h, 1, [[s, INIT_STREAM, 2] for s in seeds])
    return {"embedding": stack(emb), "lstm": stack(lstm), "output": out}


def forward(params, unit: str, tokens: np.ndarray, lengths: np.ndarray,
            readout: str = "every") -> np.ndarray:
    """(R, N, L) values (in units of ``scale``) after each prefix, or (R, N, 1) the value
    of the final state only with ``readout="last"``; tokens (N, L) shared or (R, N, L).
    Past a sequence's end the state is held, so position L-1 reads it all."""
    emb = params["embedding"]["E"]
    r = emb.shape[0]
    tokens = np.broadcast_to(tokens, (r, *tokens.shape[-2:]))
    lengths = np.broadcast_to(lengths, (r, tokens.shape[1]))
    x = np.take_along_axis(emb, tokens.reshape(r, -1, 1), axis=1).reshape(
        *tokens.shape, emb.shape[-1])
    hidden = reference.cell_hidden("lstm", params["lstm"])
    h = c = np.zeros((r, tokens.shape[1], hidden))
    outs = []
    for t in range(tokens.shape[2]):
        h_new, (_, c_new) = reference.cell_step("lstm", params["lstm"], x[:, :, t], (h, c))
        live = (t < lengths)[..., None]
        h, c = np.where(live, h_new, h), np.where(live, c_new, c)
        outs.append(h)
    hs = np.stack(outs, axis=2)[:, :, -1:] if readout == "last" else np.stack(outs, axis=2)
    y = reference.forward(unit, params["output"], hs.reshape(r, -1, hidden))
    return y.reshape(hs.shape[:-1])


def loss_weights(task, numbers: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets (in units of scale) and loss weights, (len(numbers), L): the final value
    only, or every prefix that reads as a number (``prefix_loss``); rows sum to 1. With
    ``readout=last``, (len(numbers), 1): the value of the whole number, weight 1."""
    if task.param("readout") == "last":
        y = numbers[:, None] / task.params["scale"]
        return y.astype(np.float32), np.ones_like(y, dtype=np.float32)
    y, mask = task.prefix_targets()
    y, mask = y[numbers - 1] / task.params["scale"], mask[numbers - 1]
    if not task.params["prefix_loss"]:
        mask = np.zeros_like(mask)
        mask[np.arange(len(numbers)), lengths[numbers - 1] - 1] = True
    w = mask / mask.sum(axis=1, keepdims=True)
    return y.astype(np.float32), w.astype(np.float32)


def final_values(pred: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(R, N) the value read after each whole number, from a prediction (R, N, K): its
    only value (K = 1, ``readout="last"``) or the one at the number's last token."""
    if pred.shape[-1] == 1:
        return pred[..., 0]
    return pred[:, np.arange(len(lengths)), lengths - 1]


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """Train the seeds of one configuration together; one result per spec."""
    first = specs[0]
    unit = first.unit
    task.check_model(unit)
    seeds = [s.seed for s in specs]
    r = len(seeds)
    tokens, lengths = task.encoded()
    split = task.split()
    train = split["train"]
    targets, weights = loss_weights(task, train, lengths)
    trainer = registry.framework_module(first.framework, "text").Trainer(
        init_params(task, unit, seeds), unit, lr=first.lr, device=first.device,
        readout=task.param("readout"))
    cfg = engine.TrainConfig.of(first)
    rngs = [np.random.default_rng([s, DATA_STREAM]) for s in seeds]
    values = np.arange(1, len(lengths) + 1, dtype=np.float64)
    scale = float(task.params["scale"])
    curve_names = ["validation", "train", "interpolation", "extrapolation"]
    last: dict[str, np.ndarray] = {}

    def batches(n: int) -> dict:
        picks = np.stack([rng.integers(0, len(train), size=(n, cfg.batch_size))
                          for rng in rngs], axis=1)  # (n, R, B)
        rows = train[picks] - 1
        return {"tokens": tokens[rows], "lengths": lengths[rows], "targets": targets[picks],
                "weights": weights[picks]}

    def evaluate() -> dict[str, np.ndarray]:
        """Per split, the MSE of the value read after each whole number; "numbers": NaN
        for a replica with any non-finite value (divergence watches every number)."""
        pred = final_values(trainer.predict(tokens, lengths), lengths)
        last["pred"] = pred.astype(np.float64) * scale
        with np.errstate(all="ignore"):
            sq = (last["pred"] - values) ** 2
        out = {name: sq[:, split[name] - 1].mean(axis=1) if len(split[name])
               else np.full(r, np.nan) for name in curve_names}
        out["numbers"] = np.where(np.isfinite(sq).all(axis=1), 0.0, np.nan)
        return out

    # one chunk per evaluation interval: the picks are drawn as the loop has always drawn
    # them (bounded integers drawn in two calls are not those drawn in one)
    result = engine.fit(trainer, [unit], batches, evaluate, cfg, r,
                        lams=lambda steps: engine.regulariser_weights([unit], cfg, steps),
                        chunk=cfg.eval_interval, keep=lambda: {"pred": last["pred"]},
                        watch=("numbers",), progress=progress, streams=rngs)
    out = engine.results(result, lambda k: task.metrics(result.seed(k)), curves=curve_names,
                         finite_only=True)
    return out, result.train_seconds
