"""PNG plots of a scenario report (matplotlib, imported only here and only when called).

Three figures, each written as a PNG file:

* ``accuracy_per_round.png``: mean held-out accuracy of the global model after each round,
  with DP and for the reference trained without DP;
* ``epsilon_per_round.png``: the largest cumulative epsilon of any user after each round;
* ``accuracy_per_user.png``: each user's accuracy under the global model against their
  personalized model (points above the diagonal gained from personalization).

matplotlib runs with its non-interactive ``Agg`` backend, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from securecomp.errors import MissingDependencyError

__all__ = ["PLOT_FILES", "write_plots"]

#: File names `write_plots` creates, in order.
PLOT_FILES = ("accuracy_per_round.png", "epsilon_per_round.png", "accuracy_per_user.png")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError(
            "writing the demo's plots needs matplotlib: pip install matplotlib "
            "(the JSON report is written without it)"
        ) from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def write_plots(report: dict[str, Any], out: str | Path) -> list[Path]:
    """Write the three PNG figures of ``report`` (a `ScenarioReport.to_dict`) into ``out``.

    Raises
    ------
    MissingDependencyError
        matplotlib is not installed.
    """
    plt = _pyplot()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in PLOT_FILES]

    rounds = list(range(len(report["accuracy_per_round"])))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(rounds, report["accuracy_per_round"], marker="o", label="global model, with DP")
    ref = report.get("reference_accuracy_per_round") or []
    if ref:
        ax.plot(range(len(ref)), ref, marker="s", linestyle="--", label="reference, no DP")
    pers = report.get("personalization", {}).get("mean_personalized")
    if pers is not None:
        ax.axhline(pers, color="tab:green", linestyle=":", label="personalized (after training)")
    ax.set_xlabel("round")
    ax.set_ylabel("mean held-out accuracy per user")
    ax.set_title("Accuracy per round")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[0], format="png")
    plt.close(fig)

    eps = [e if e is not None else float("nan") for e in report["privacy"]["epsilon_max_per_round"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(range(len(eps)), eps, marker="o", color="tab:red", label="largest user epsilon")
    budget = report.get("consent", {}).get("default_budget", {}).get("epsilon")
    if budget is not None:
        ax.axhline(budget, color="gray", linestyle="--", label="default budget")
    strict = report.get("consent", {}).get("strict_budget", {}).get("epsilon")
    if strict is not None:
        ax.axhline(strict, color="gray", linestyle=":", label="strict budget")
    ax.set_xlabel("round")
    ax.set_ylabel(f"epsilon (delta = {report['privacy']['delta']:g})")
    ax.set_title("User-level privacy spent")
    ax.set_ylim(bottom=0.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[1], format="png")
    plt.close(fig)

    clients = report.get("personalization", {}).get("clients", [])
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(
        [c["global_model"] for c in clients],
        [c["personalized"] for c in clients],
        s=14,
        alpha=0.7,
        label="one user",
    )
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="no change")
    ax.set_xlim(0.0, 1.02)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("accuracy of the global model")
    ax.set_ylabel("accuracy of the personalized model")
    ax.set_title("Global vs personalized, per user")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[2], format="png")
    plt.close(fig)
    return paths
