"""The tables and the figure of results.md's "Text to number at [NALU]'s authors' setting".

    python docs/text_authors.py OUT.png LABEL=RESULTS_DIR [LABEL=RESULTS_DIR ...]

Per results directory (one setting, any frameworks), per framework and output layer:
median [quartiles] over seeds of the test MAE inside (interpolation) and beyond
(extrapolation) the training hundreds, the normalised errors, successes and the selected
step, as markdown; and the median training and validation MSE over seeds against the
step (the engine's evaluations, ``record["curve"]``) as one small PNG.
"""
from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reports.frame import read  # noqa: E402

COLOURS = {"linear": "tab:blue", "nac": "tab:orange", "nalu": "tab:red", "nau": "tab:green"}


def quartiles(values: pd.Series, digits: int = 1) -> str:
    v = values.astype(float)
    q = v.quantile([0.25, 0.5, 0.75])
    return f"{q[0.5]:.{digits}f} [{q[0.25]:.{digits}f}, {q[0.75]:.{digits}f}]"


def table(label: str, df: pd.DataFrame) -> str:
    lines = ["| setting | framework | output | runs | interpolation MAE | extrapolation MAE "
             "| train MAE | interpolation normalised | extrapolation normalised | successes "
             "| selected step |", "|" + " --- |" * 11]
    for (fw, unit), g in df.groupby(["framework", "unit"], sort=True):
        lines.append(
            f"| {label} | {fw} | {unit} | {len(g)} | {quartiles(g['mae_interpolation'])} | "
            f"{quartiles(g['mae_extrapolation'])} | {quartiles(g['mae_train'])} | "
            f"{quartiles(g['interpolation_normalised'], 2)} | "
            f"{quartiles(g['extrapolation_normalised'], 2)} | "
            f"{int(g['success'].astype(bool).sum())}/{len(g)} | "
            f"{g['selected_step'].astype(float).median():.0f} |")
    return "\n".join(lines)


def main(out: str, sources: list[str]) -> None:
    panels = []
    for source in sources:
        label, directory = source.split("=", 1)
        df, curves = read(directory)
        print(table(label, df), "\n")
        for fw in sorted(curves["framework"].unique()):
            panels.append((f"{label}, {fw}", curves[curves["framework"] == fw]))
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 4.6), sharex="col",
                             squeeze=False, dpi=64)
    for j, (title, c) in enumerate(panels):
        for i, name in enumerate(("train", "validation")):
            ax = axes[i][j]
            med = c[c["set"] == name].groupby(["unit", "step"])["mse"].median()
            for unit, line in med.groupby(level=0):
                ax.plot(line.index.get_level_values("step"), line.to_numpy(),
                        color=COLOURS.get(unit), label=unit)
            ax.set_yscale("log")
            ax.set_title(title if i == 0 else "", fontsize=9)
            ax.set_ylabel(f"{name} MSE (median)" if j == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == 1:
                ax.set_xlabel("step", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, pil_kwargs={"compress_level": 9})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
