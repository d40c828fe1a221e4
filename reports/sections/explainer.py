"""The explainer's claim beside the measurement (static task, `protocol=explainer`): per
function, unit and framework, the distribution of the test `tf.nn.l2_loss` over seeds and
in how many seeds the explainer's figure (or better) is reached."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from reports import figures, stats
from reports.html import num, rate
from tasks.static_arithmetic import EXPLAINER_L2

CLAIM = (f"The explainer's code (grananqvist/NALU-tf, nalu.py) trains NALU -> NALU on a + b and "
         f"prints one test l2 loss, {EXPLAINER_L2:g}; its document says the other functions "
         f"of its table do \"similarly\" well. Here every seed of every function runs its "
         f"protocol (docs/explainer-protocol.md); a seed reaches the figure when its test l2 "
         f"loss (half the sum of squared errors over 10,000 examples from U[0, 100), after "
         f"the last step) is at most {EXPLAINER_L2:g}. A non-finite loss does not reach it.")


def runs(df: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of protocol explainer that carry a test l2 loss."""
    if df.empty or "param_protocol" not in df or "test_l2_loss" not in df:
        return df.iloc[0:0]
    return df[df["param_protocol"].eq("explainer") & df["status"].isin(("ok", "diverged"))]


def claim_table(df: pd.DataFrame) -> dict | None:
    rows = runs(df)
    if rows.empty:
        return None
    out = []
    for (op, unit, fw), g in rows.groupby(["param_op", "unit", "framework"], sort=True):
        loss = g["test_l2_loss"].astype(float).fillna(np.inf)  # NaN: no figure reached
        finite = loss[np.isfinite(loss)]
        reached = int((loss <= EXPLAINER_L2).sum())
        low, high = stats.wilson(reached, len(g))
        q1, q3 = (finite.quantile([0.25, 0.75]) if len(finite) else (np.nan, np.nan))
        out.append([op, unit, fw, len(g), num(loss.median()), f"{num(q1)} - {num(q3)}",
                    num(finite.min() if len(finite) else np.nan), len(g) - len(finite),
                    f"{reached} of {len(g)}: {rate(reached / len(g), low, high)}",
                    f"{EXPLAINER_L2:g} (one run)" if op == "add" else '"similarly" well'])
    return {"note": CLAIM, "rows": out, "numeric": (4, 8),
            "columns": ["function", "unit", "framework", "seeds", "test l2 loss: median",
                        "quartiles (finite)", "min", "not finite",
                        f"seeds <= {EXPLAINER_L2:g} [95% CI]", "the explainer's claim"]}


def distribution(df: pd.DataFrame) -> bytes | None:
    """log10 of the test l2 loss of every seed, per function (across) and unit (colour),
    one panel per framework; the explainer's figure as a dashed line; a non-finite loss
    drawn at the top of its panel."""
    rows = runs(df)
    if rows.empty:
        return None
    loss = rows["test_l2_loss"].astype(float)
    finite = np.isfinite(loss)
    top = np.log10(loss[finite].max()) + 1 if finite.any() else 1.0
    data = rows.assign(log_loss=np.where(finite, np.log10(loss.where(finite, 1.0)), top))
    ops = [op for op in ("add", "sub", "mul", "div", "squared", "root")
           if op in set(data["param_op"])] + sorted(set(data["param_op"]) - {
               "add", "sub", "mul", "div", "squared", "root"})
    fws = sorted(data["framework"].unique())
    width = 1.2 + 0.9 * len(ops)
    with figures._figure(*figures._wrap(len(fws), width), width=width, height=3.6, sharey=True) \
            as (fig, axes):
        figures._spare(axes, len(fws))
        for ax, fw in zip(axes.flat, fws):
            sns.stripplot(data=data[data["framework"] == fw], x="param_op", y="log_loss",
                          hue="unit", order=ops, dodge=True, size=3, alpha=0.6, ax=ax)
            ax.axhline(np.log10(EXPLAINER_L2), color="0.2", linestyle="--", linewidth=1,
                       label=f"the explainer's {EXPLAINER_L2:g}")
            ax.set(title=fw, xlabel="function", ylabel="log10 test l2 loss")
            ax.legend(fontsize="small")
        return figures._png(fig)
