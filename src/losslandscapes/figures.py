"""Figures from artefacts: disconnectivity-graph panels and AUC box plots (PNG)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

LABELS = {"train_auc": "training AUC", "test_auc": "testing AUC"}


def draw_tree(ax, nodes: pd.DataFrame, value: np.ndarray, norm, cmap, classes: int) -> None:
    """One disconnectivity graph of a landscape with ``classes`` symmetry classes on ``ax``; leaves
    coloured by ``value`` [n_minima] via cmap."""
    by_id = nodes.set_index("node")
    if len(nodes) == 1:  # the global minimum is joined to no other minimum
        r = nodes.iloc[0]
        ax.plot([0, 0], [r.energy + 1e-3, r.energy], color=cmap(norm(value[int(r.minimum)])), lw=1.4)
        text = "a single symmetry class:\nnothing to connect" if classes == 1 else "no transition state joins\nthe global minimum yet"
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3")
    for r in nodes.itertuples():
        if r.parent >= 0:
            p = by_id.loc[r.parent]
            ax.plot([p.x, r.x], [p.energy, r.energy], color="0.35", lw=0.6, zorder=1)
        if r.minimum >= 0:
            ax.plot([r.x, r.x], [r.energy, r.leaf_energy], color=cmap(norm(value[r.minimum])), lw=1.4, zorder=2)
    ax.set_xticks([])
    ax.set_ylabel("training loss")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def disconnectivity_figure(panels: list[dict], colour: str, title: str, output: str) -> None:
    """Panels: ``{"title", "nodes" (tree frame), "metrics" (frame, row i = minimum i), "classes"}``;
    one shared colour scale over every panel."""
    vals = np.concatenate([p["metrics"][colour].to_numpy(float) for p in panels])
    vals = vals[np.isfinite(vals)]
    lo, hi = (vals.min(), vals.max()) if len(vals) else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1e-3, hi + 1e-3
    norm, cmap = matplotlib.colors.Normalize(lo, hi), plt.get_cmap("viridis")
    n = len(panels)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols + 1, 4.6 * rows), squeeze=False, layout="constrained")
    for ax, p in zip(axes.flat, panels):
        draw_tree(ax, p["nodes"], p["metrics"][colour].to_numpy(float), norm, cmap, p["classes"])
        joined = int(p["nodes"]["n_minima"].max())  # the root holds every class joined to the global minimum
        ax.set_title(f"{p['title']}\n{joined} of {p['classes']} symmetry classes connected", fontsize=10)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes.ravel().tolist(), shrink=0.8, label=LABELS.get(colour, colour))
    fig.suptitle(title)
    _save(fig, output)


def boxplot_figure(groups: list[tuple[str, pd.DataFrame]], title: str, output: str) -> None:
    """Box plots of training and testing AUC per group (e.g. per error level)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True, layout="constrained")
    for ax, col in zip(axes, ("train_auc", "test_auc")):
        ax.boxplot([g[col].dropna().to_numpy() for _, g in groups], tick_labels=[name for name, _ in groups])
        ax.set_title(LABELS[col])
        ax.set_xlabel("mislabelled training data (%)")
    axes[0].set_ylabel("AUC")
    fig.suptitle(title)
    _save(fig, output)


def _save(fig, output: str) -> None:
    from .artefacts import atomic_path

    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
