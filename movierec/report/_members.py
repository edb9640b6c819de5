"""The report's sections on the ensemble: its members (kept and left out, each with its hold-out
error and the reason) and, folded at the end, its internals (weights, score standardization)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.ids import sample_pairs
from movierec.report import _plots
from movierec.report._markup import e, error_name, img, table

if TYPE_CHECKING:
    from movierec.report import ReportData

__all__ = ["LEFT_OUT", "internals_section", "members_section"]

#: (user, movie) pairs drawn to show each member's score distribution.
SAMPLE_PAIRS = 20_000
#: Why forward selection leaves a member out, as the page says it.
LEFT_OUT = "left out by forward selection: adding it did not lower the hold-out error"


def _weighting(data: ReportData) -> str:
    """Return how the weights are made, naming the error used."""
    if data.ensemble.weights == "stacked":
        return "stacked weight (non-negative least squares on the hold-out)"
    error = error_name(data.ensemble.metric)
    return f"weight 1 / {error if ' ' not in error else f'({error})'} on the hold-out"


def _with_it(selection: pd.DataFrame | None, chosen: list[int], position: int) -> tuple[float, float] | None:
    """Return the hold-out errors of the chosen members alone and with ``position`` added, if tried."""
    if selection is None or selection.empty:
        return None
    errors = dict(zip(map(tuple, selection["members"]), selection["error"]))
    without, with_it = errors.get(tuple(chosen)), errors.get(tuple(sorted([*chosen, position])))
    return None if without is None or with_it is None else (float(without), float(with_it))


def members_section(data: ReportData) -> str:
    """Return every member the ensemble was given: its hold-out error, kept or left out and why, fit time."""
    ensemble = data.ensemble
    names = list(data.names) if data.names is not None else list(data.members)
    chosen = [int(p) for p in ensemble.members_]
    errors = np.asarray(ensemble.candidate_errors_, float)
    weights = dict(zip(chosen, np.asarray(ensemble.weights_, float) / np.sum(ensemble.weights_)))
    error = error_name(ensemble.metric)
    rows: list[list[Any]] = []
    for position, name in enumerate(names):
        model = ensemble.models[position] if position < len(ensemble.models) else None
        seconds = data.fit_seconds.get(name)
        if position in weights:
            status = f"kept: {weights[position]:.0%} of the weight"
        else:
            status = LEFT_OUT
            tried = _with_it(getattr(ensemble, "selection_", None), chosen, position)
            if tried is not None:
                status += f" (the ensemble's {error} {tried[0]:.4f}, {tried[1]:.4f} with it)"
        rows.append([name, type(model).__name__ if model is not None else "", float(errors[position]), status,
                     "" if seconds is None else f"{seconds:.1f}"])
    left_out = [name for position, name in enumerate(names) if position not in weights]
    chosen_text = "" if ensemble.select == "all" else (
        " The members were chosen on that hold-out by forward selection: from the best one, a member joins "
        "while it lowers the ensemble's own hold-out error.")
    summary = (f" Left out: {e(', '.join(left_out))}; only the kept members rank for the ensemble and appear "
               "below." if left_out else "")
    return "\n".join([
        "<h2>The ensemble's members</h2>",
        (
            f"<p>Member m's error e<sub>m</sub> is its {e(error)} on a hold-out of the training part (never "
            f"the test part); its {e(_weighting(data))}.{chosen_text}{summary}</p>"
        ),
        table(["member", "class", f"hold-out {error}", "in the ensemble", "fit seconds"], rows),
    ])


def internals_section(data: ReportData) -> str:
    """Return the ensemble's weights and score standardization, folded in a ``<details>`` element."""
    return "\n".join([
        '<details class="internals">',
        "<summary>The ensemble's internals: weights and score standardization</summary>",
        _weights(data),
        _scores(data),
        "</details>",
    ])


def _weights(data: ReportData) -> str:
    ensemble = data.ensemble
    names = list(data.members)
    weights, errors = np.asarray(ensemble.weights_, float), np.asarray(ensemble.errors_, float)
    shares = weights / weights.sum()
    mode = "every unseen movie" if ensemble.candidates is None else f"each member's own top {ensemble.candidates}"
    error = error_name(ensemble.metric)
    stacked = ensemble.weights == "stacked"
    rows = [[n, err, w, f"{s:.1%}"] for n, err, w, s in zip(names, errors, weights, shares)]
    return "\n".join([
        "<h3>Weights</h3>",
        (
            "<p>The ensemble's score of a (user, movie) pair is <span class=\"formula\">&Sigma;<sub>m</sub> "
            "w<sub>m</sub> z<sub>m</sub>(u, i)</span> over the kept members, z<sub>m</sub> the member's "
            f"standardized score, w<sub>m</sub> its {e(_weighting(data))}; scored over {e(mode)}.</p>"
        ),
        table(["member", f"hold-out {error} e_m", "stacked weight w_m" if stacked else "weight w_m = 1/e_m", "share"],
              rows),
        img(_plots.weight_bars(names, weights, errors, error, _weighting(data)), "ensemble weights per member"),
    ])


def _scores(data: ReportData) -> str:
    ensemble = data.ensemble
    pairs = sample_pairs(ensemble.users_, ensemble.items_, SAMPLE_PAIRS, data.seed)
    raw, standardized, rows = {}, {}, []
    for position, (name, member) in enumerate(data.members.items()):
        scores = member.predict(pairs).to_numpy(dtype=float)
        mean, std = float(ensemble.score_mean_[position]), float(ensemble.score_std_[position])
        raw[name] = scores
        standardized[name] = (scores - mean) / std if std > 0 else np.zeros_like(scores)
        rows.append([name, type(member).__name__, mean, std, float(np.nanmin(scores)), float(np.nanmax(scores))])
    return "\n".join([
        "<h3>Scores before and after standardization</h3>",
        (
            f"<p>Each kept member's scores on {len(pairs):,} random (user, movie) pairs of the training "
            "catalogue. Members score on different scales; the ensemble first standardizes each with the "
            "mean &mu;<sub>m</sub> and standard deviation &sigma;<sub>m</sub> it fixed at fit.</p>"
        ),
        img(_plots.score_histograms(raw, standardized), "score distributions before and after standardization"),
        table(["member", "class", "μ (fit)", "σ (fit)", "min in sample", "max in sample"], rows),
    ])
