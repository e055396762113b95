"""Pictures of a drift report: baseline against current distribution, worst features first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neve.monitoring._drift import DriftReport

#: Categorical features with many values show only the bins that moved most.
MAX_BARS = 15


def plot_report(report: DriftReport, path: Path, *, top: int) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as exc:  # pragma: no cover - matplotlib is in the default install
        raise ModuleNotFoundError("DriftReport.plot needs matplotlib: pip install matplotlib") from exc

    worst = report.features.sort_values(["drifted", "psi"], ascending=False).head(top)
    fig, axes = plt.subplots(len(worst), 1, figsize=(9, 2.8 * max(len(worst), 1)), squeeze=False)
    for ax, row in zip(axes[:, 0], worst.itertuples(), strict=True):
        detail = report._details[row.feature]
        bins = list(range(len(detail.labels)))
        if len(bins) > MAX_BARS:
            moved = sorted(bins, key=lambda i: -abs(detail.actual[i] - detail.expected[i]))
            bins = sorted(moved[:MAX_BARS])
        labels = [detail.labels[i] for i in bins]
        x = range(len(bins))
        ax.bar([i - 0.2 for i in x], [detail.expected[i] for i in bins], width=0.4, label="training")
        ax.bar([i + 0.2 for i in x], [detail.actual[i] for i in bins], width=0.4, label="current")
        ax.set_xticks(list(x), labels, rotation=45, ha="right", fontsize=7)
        verdict = "DRIFT" if row.drifted else "ok"
        ax.set_title(f"{row.feature} ({row.type}): PSI {row.psi:.3f} - {verdict}", fontsize=9)
        ax.set_ylabel("share of rows", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
