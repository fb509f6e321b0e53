"""Figures from artefacts: disconnectivity-graph panels and AUC box plots (PNG)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

LABELS = {"train_auc": "training AUC", "test_auc": "testing AUC", "incorrect_auc": "AUC, mislabelled items",
          "correct_auc": "AUC, correctly labelled items", "train_loss": "training loss", "test_ce": "testing loss"}


PRINT_WIDTH = 6.7  # inches: a journal's full text width (170 mm)
plt.rcParams.update({"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6,
                     "ytick.labelsize": 6, "figure.titlesize": 8})


def draw_tree(ax, nodes: pd.DataFrame, value: np.ndarray, norm, cmap, gmin_loss: float) -> None:
    """One disconnectivity graph on ``ax``: inner branches grey, each leaf's branch coloured by
    ``value[minimum]`` through ``norm`` and ``cmap``; the axis is the loss above ``gmin_loss``, in
    a power of ten chosen for the panel."""
    by_id = nodes.set_index("node")
    span = max(float(nodes["energy"].max()) - gmin_loss, 1e-12)
    exponent = int(np.floor(np.log10(span)))
    scale = 10.0 ** -exponent
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    n_leaves = int((nodes["minimum"] >= 0).sum())
    lw = float(np.clip(0.6 * width_pt / max(n_leaves, 1), 0.2, 1.2))
    if n_leaves == 1:  # nothing joined: a stub at the global minimum
        r = nodes.iloc[0]
        ax.plot([r.x, r.x], [1.0, 0.0], color=cmap(norm(value[int(r.minimum)])), lw=1.2)
        ax.set_yticks([0.0])
        exponent = 0
    for r in nodes.itertuples():
        y = (r.energy - gmin_loss) * scale
        if r.parent >= 0:
            p = by_id.loc[r.parent]
            leaf_colour = cmap(norm(value[r.minimum])) if r.minimum >= 0 else "0.45"
            ax.plot([p.x, r.x], [(p.energy - gmin_loss) * scale, y], color=leaf_colour, lw=lw,
                    zorder=2 if r.minimum >= 0 else 1, solid_capstyle="butt")
        if r.minimum >= 0 and r.parent >= 0:
            ax.plot([r.x, r.x], [y, (r.leaf_energy - gmin_loss) * scale], color=cmap(norm(value[r.minimum])), lw=lw,
                    zorder=2, solid_capstyle="butt")
    ax.set_xticks([])
    ax.set_ylabel(f"training loss above the global minimum ($10^{{{exponent}}}$)" if exponent else
                  "training loss above the global minimum")
    ax.set_xlim(-0.7, n_leaves - 0.3)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def colour_norm(values: np.ndarray):
    """A Normalize over the finite ``values`` (a small range around a single value)."""
    v = values[np.isfinite(values)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1e-3, hi + 1e-3
    return matplotlib.colors.Normalize(lo, hi)


def disconnectivity_figure(panels: list[dict], colour: str, title: str, output: str, shared_scale: bool = False) -> None:
    """Panels: ``{"title", "nodes" (tree frame), "value" (per-minimum array, row i = minimum i),
    "gmin_loss", "note" (text for an empty panel, or None)}``. Each panel has its own colour bar
    over the values of its leaves, unless ``shared_scale``. Drawn at a journal's print width."""
    cmap = plt.get_cmap("viridis")

    def leaf_values(p):
        return p["value"][p["nodes"].loc[p["nodes"]["minimum"] >= 0, "minimum"].to_numpy()]

    shared = colour_norm(np.concatenate([leaf_values(p) for p in panels])) if shared_scale else None
    n = len(panels)
    cols = 1 if n == 1 else 2
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(PRINT_WIDTH if cols > 1 else PRINT_WIDTH / 2, 2.9 * rows + 0.3),
                             squeeze=False, layout="constrained")
    for ax, p in zip(axes.flat, panels):
        norm = shared or colour_norm(leaf_values(p))
        draw_tree(ax, p["nodes"], p["value"], norm, cmap, p["gmin_loss"])
        ax.set_title(p["title"])
        if p.get("note"):
            ax.text(0.5, 0.97, p["note"], transform=ax.transAxes, ha="center", va="top", color="0.3")
        elif not shared_scale:
            fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.9, pad=0.02,
                         label=LABELS.get(colour, colour))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if shared_scale:
        fig.colorbar(matplotlib.cm.ScalarMappable(norm=shared, cmap=cmap), ax=axes.ravel().tolist(), shrink=0.8,
                     label=LABELS.get(colour, colour))
    fig.suptitle(title)
    _save(fig, output)


def boxplot_figure(groups: list[tuple[str, pd.DataFrame]], title: str, output: str) -> None:
    """Box plots of training and testing AUC per group (e.g. per error level; one row per symmetry
    class), at a journal's print width."""
    fig, axes = plt.subplots(1, 2, figsize=(PRINT_WIDTH, 2.8), sharey=True, layout="constrained")
    for ax, col in zip(axes, ("train_auc", "test_auc")):
        ax.boxplot([g[col].dropna().to_numpy() for _, g in groups], tick_labels=[name for name, _ in groups])
        ax.set_title(LABELS[col])
        ax.set_xlabel("mislabelled training data (%)")
    axes[0].set_ylabel("AUC")
    fig.suptitle(title)
    _save(fig, output)


def _save(fig, output: str) -> None:
    from losslandscapes.storage.artefacts import atomic_path

    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=300, format="png", metadata={"Software": None})
    plt.close(fig)
