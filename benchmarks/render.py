"""Regenerate ``docs/benchmarks.md`` from the suites' ``benchmarks/results/*.json``.

``python -m benchmarks.render [--results DIR] [--output FILE]``. Only files present are rendered;
a missing suite gets a line saying how to produce it. Nothing here runs a benchmark.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from benchmarks import SUITES
from benchmarks._common import ENSEMBLE3, ENSEMBLE4, RANKING_ENSEMBLE, RESULTS_DIR, ROOT, SCALE_MAIN_JOB

# Targets (goals to report against, not test thresholds): rating accuracy and top_n speed.
ENSEMBLE_MEAN_MAX = 0.905
ENSEMBLE_U1_MAX = 0.915
SPEEDUP_MIN = 50.0
# Ranking: the main job's ranking ensemble on the Recommenders protocol, and the ensembles' full top_n.
NDCG_MIN = 0.50
TIME_RATIO_MAX = 3.0
RSS_RATIO_MAX = 2.0
# Scale, on this machine at 25M ratings: the main job's time and memory, every model's top_n time.
SCALE_TARGET_SIZE = "25000000"
MAIN_JOB_MINUTES_MAX = 60.0
MAIN_JOB_GB_MAX = 16.0
TOP_N_MINUTES_MAX = 10.0
# Reference RMSEs on ml-100k (u1-u5 mean / u1): Surprise SVD as measured here; published models on u1.
REFERENCES = [
    ("Surprise SVD defaults (this machine, benchmarks/surprise_topn.py)", 0.938, 0.951),
    ("GC-MC (Berg et al. 2017, published)", None, 0.910),
    ("GLocal-K (Han et al. 2021, published)", None, 0.889),
]
RECOMMENDERS_NDCG = {"SVD": 0.096, "ALS": 0.044, "BPR": 0.442, "BiVAE": 0.475}
# Lists from a visitor's history on ml-100k: the ensemble's against its in-fit lists and popularity's.
HISTORY_IN_FIT_MIN = 0.97
HISTORY_POPULARITY_MIN = 1.8


def fmt(value: Any, digits: int = 4) -> str:
    """Return ``value`` rounded for a table cell; a dash for missing values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """Return the lines of a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell if isinstance(cell, str) else fmt(cell) for cell in row) + " |" for row in rows]
    return lines


def load(folder: Path) -> dict[str, dict[str, Any]]:
    """Return {suite: document} for every suite JSON file in ``folder``."""
    found = {}
    for suite in SUITES:
        path = folder / f"{suite}.json"
        if path.is_file():
            found[suite] = json.loads(path.read_text())
    return found


def provenance(doc: dict[str, Any]) -> list[str]:
    """Return the lines saying which command produced a result, when, where and with what."""
    m = doc.get("machine", {})
    v = doc.get("versions", {})
    load_avg = m.get("load_average_at_start")
    machine_text = (f"{m.get('platform', '?')}, {m.get('cpu_count', '?')} CPUs, {m.get('memory_gb', '?')} GiB"
                    + (f", load average {load_avg[0]:.1f} at start (machine shared)" if load_avg else ""))
    versions_text = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    lines = [
        (f"Command: `{doc.get('command', 'python -m benchmarks')}` — run {doc.get('date', '?')}, "
        f"took {fmt(doc.get('duration_seconds'), 0)} s{' (quick)' if doc.get('quick') else ''}."),
        f"Machine: {machine_text}.",
        f"Versions: {versions_text}.",
    ]
    notes = doc.get("notes") or []
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return lines


def _pm(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "–"
    return f"{stats['mean']:.4f} ± {stats['sd']:.4f}"


def _params(tuned: Any) -> str:
    if not isinstance(tuned, dict):
        return ""
    params = tuned.get("params") or tuned.get("member_errors")
    if not params:
        return ""
    text = ", ".join(f"{k}={fmt(v, 4) if isinstance(v, float) else v}" for k, v in params.items())
    if "member_errors" in tuned:
        text = "errors: " + text
    if tuned.get("reused_from"):
        text += f" (from {tuned['reused_from']})"
    return text


def accuracy_section(doc: dict[str, Any]) -> list[str]:
    res = doc["results"]
    summary, folds = res.get("summary", {}), res.get("folds", {})
    lines = ["## 1. Rating accuracy (ml-100k official folds)", "", *provenance(doc), ""]
    rows = []
    for name, s in summary.items():
        tuned = folds.get("u1", {}).get(name, {}).get("tuned")
        rows.append([name, _pm(s.get("rmse")), _pm(s.get("mae")), s.get("u1_rmse"), s.get("u1_mae"), _params(tuned)])
    lines += table(["model", f"RMSE mean ± sd ({len(folds)} folds)", "MAE mean ± sd", "RMSE u1", "MAE u1",
                    "chosen on u1's training fold"], rows)
    lines += ["", "RMSE per fold:", ""]
    fold_names = list(folds)
    rows = [[name, *[folds[f].get(name, {}).get("rmse") for f in fold_names]] for name in summary]
    lines += table(["model", *fold_names], rows)
    for ensemble in (ENSEMBLE3, ENSEMBLE4):
        beats = summary.get(ensemble, {}).get("vs_best_member")
        if not beats:
            continue
        lines += ["", f"{ensemble} against its best member on each fold (margin > 0: the ensemble is better):", ""]
        rows = [[f, b["ensemble"], f"{b['best_member']} {b['best_member_rmse']:.4f}", f"{b['margin']:+.4f}"]
                for f, b in beats.items()]
        lines += table(["fold", "ensemble RMSE", "best member", "margin"], rows)
    lines += ["", "Reference points (RMSE, u1–u5 mean / u1):", ""]
    lines += table(["model", "mean", "u1"], [[name, mean, u1] for name, mean, u1 in REFERENCES])
    return lines


def ranking_section(doc: dict[str, Any]) -> list[str]:
    res = doc["results"]
    k = res.get("k", 10)
    lines = [f"## 2. Top-{k} ranking (Microsoft Recommenders' protocol)", "", *provenance(doc), ""]
    rows = []
    for name, r in res.get("models", {}).items():
        if "error" in r:
            rows.append([name, "failed: " + r["error"][:80], "", "", "", "", "", ""])
            continue
        # A tuned model's fit time is its whole search (every candidate's fit and the final fit).
        fit_seconds = r.get("tune_seconds", r.get("fit_seconds"))
        rows.append([name, r.get("precision"), r.get("recall"), r.get("ndcg"), r.get("map"), r.get("coverage"),
                     fmt(fit_seconds, 1), fmt(r.get("top_n_seconds"), 2)])
    lines += table(["model", f"precision@{k}", f"recall@{k}", f"nDCG@{k}", f"MAP@{k}", "coverage",
                    "fit s (tuned: search)", "top_n s"], rows)
    chosen = [(name, r) for name, r in res.get("models", {}).items() if r.get("params")]
    if chosen:
        lines += ["", f"Settings chosen on the validation split (its nDCG@{k}, then every point tried):", ""]
        lines += [f"- {name}: {_point(r['params'])} (validation {fmt(r.get('validation_ndcg'))}; tried "
                  + "; ".join(f"{_point(t['params'])}: {fmt(t.get('validation_ndcg'))}" for t in r.get("tried", []))
                  + ")" for name, r in chosen]
    for name, r in res.get("models", {}).items():
        if r.get("members"):
            lines += ["", _selection(name, r, k)]
    published = ", ".join(f"{name} {value}" for name, value in RECOMMENDERS_NDCG.items())
    lines += ["", f"Microsoft Recommenders publishes nDCG@10 on this protocol: {published}."]
    return lines


def _point(params: dict[str, Any]) -> str:
    """Return one grid point as ``name=value`` pairs, numbers in their shortest form."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _selection(name: str, r: dict[str, Any], k: int) -> str:
    """Return the sentence saying which members an ensemble kept and what its forward selection tried."""
    members = r.get("member_validation_ndcg", {})
    text = (f"{name}: members kept {' + '.join(r['members'])}; hold-out nDCG@{k} of each member: "
            + ", ".join(f"{m} {fmt(v)}" for m, v in members.items()))
    trace = r.get("selection") or []
    if trace:
        text += "; subsets tried: " + ", ".join(f"{'+'.join(t['members'])} {fmt(t['validation_ndcg'])}" for t in trace)
    return text + "."


def speed_section(doc: dict[str, Any]) -> list[str]:
    res = doc["results"]
    lines = ["## 3. Speed (ml-100k u1.base)", "", *provenance(doc), ""]
    rows = []
    for name, r in res.get("models", {}).items():
        if "error" in r:
            rows.append([name, "failed: " + r["error"][:80], "", "", "", "", "", ""])
            continue
        recipe = f"{fmt(r.get('recipe_seconds'), 3)} s" if r.get("recipe_seconds") else "–"
        own = f"{r['speedup_vs_recipe']:.0f}×" if r.get("speedup_vs_recipe") else "–"
        vs_surprise = f"{r['speedup_vs_surprise_recipe']:.0f}×" if r.get("speedup_vs_surprise_recipe") else "–"
        rows.append([name, fmt(r.get("fit_seconds"), 2), fmt(r.get("top_n_seconds"), 4), recipe, own, vs_surprise,
                     fmt(r.get("peak_rss_mb"), 0), fmt(r.get("top_n_peak_rss_mb"), 0), fmt(r.get("jvm_peak_rss_mb"), 0)])
    lines += table(["model", "fit s (median)", "top_n all users s (median)", "reference recipe", "× faster than it",
                    "× faster than Surprise's recipe", "peak RSS MiB (Python)", "peak RSS MiB during top_n",
                    "peak RSS MiB (JVM)"], rows)
    ensembles = {name: r for name, r in res.get("models", {}).items() if "time_ratio" in r}
    if ensembles:
        lines += ["", ("Ensembles' full top_n against their members (members each in their own process; "
                       "\"in process\": the same members timed inside the ensemble's process):"), ""]
        lines += table(
            ["ensemble", "members", "top_n s", "members' top_n s (sum)", "ratio", "members in process s", "ratio",
             "peak RSS MiB", "largest member's peak RSS MiB", "ratio"],
            [[name, " + ".join(r.get("members", [])), fmt(r["top_n_seconds"], 3),
              fmt(r.get("members_top_n_seconds_sum"), 3), _times(r.get("time_ratio"), 2),
              fmt(sum(r.get("members_top_n_seconds_in_process", {}).values()) or None, 3),
              _times(r.get("time_ratio_in_process"), 2), fmt(r.get("peak_rss_mb"), 0),
              f"{fmt(r.get('largest_member_peak_rss_mb'), 0)} ({r.get('largest_member', '?')})",
              _times(r.get("rss_ratio"), 2)] for name, r in ensembles.items()])
    recipes = {name: r["recipe"] for name, r in res.get("models", {}).items() if r.get("recipe")}
    if recipes:
        lines += [""] + [f"- Reference for {name}: {text}." for name, text in recipes.items()]
    svd = res.get("models", {}).get("SurpriseSVD", {})
    if "recipe_set_agreement" in svd:
        lines += [(f"- SurpriseSVD top-{res.get('n', 10)} sets equal to the recipe's for "
                  f"{svd['recipe_set_agreement']:.1%} of users; the recipe's process peaked at "
                  f"{fmt(svd.get('recipe_peak_rss_mb'), 0)} MiB.")]
    return lines


def _size(size: str | int) -> str:
    """Return a number of ratings as 1M, 10M, 25M, 50k."""
    value = int(size)
    if value >= 1_000_000 and value % 100_000 == 0:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000 and value % 100 == 0:
        return f"{value / 1_000:g}k"
    return f"{value:,}"


def _mb(value: Any) -> str:
    return fmt(value, 0) if isinstance(value, (int, float)) else "–"


def _load(entry: dict[str, Any]) -> str:
    load_avg = entry.get("load_average_at_start")
    return f"{load_avg[0]:.1f}" if load_avg else "–"


def scale_section(doc: dict[str, Any]) -> list[str]:
    res = doc["results"]
    lines = ["## 4. Scale (synthetic MovieLens-shaped data)", "", *provenance(doc), ""]
    sizes = res.get("sizes", {})
    lines += table(["ratings", "shape of", "users", "movies", "ratings per user (min / median / max)",
                    "share of the 20,000 most-rated movies", "mean rating", "generated in s"],
                   [[_size(s), d.get("like") or "–", f"{d['users']:,}", f"{d['movies']:,}",
                     f"{d['min_ratings_per_user']} / {fmt(d.get('median_ratings_per_user'), 0)} / "
                     + (f"{d['max_ratings_per_user']:,}" if "max_ratings_per_user" in d else "–"),
                     f"{d['top_20000_movies_share']:.1%}" if "top_20000_movies_share" in d else "–",
                     fmt(d["mean_rating"], 2), fmt(d["generate_seconds"], 1)] for s, d in sizes.items()])
    models = {name: entries for name, entries in res.get("models", {}).items() if not name.startswith("movierec ")}
    rows = []
    for name, entries in models.items():
        if "error" in entries and isinstance(entries["error"], str):
            rows.append([name, "–", "failed: " + entries["error"][:80], *[""] * 8])
            continue
        for size, r in entries.items():
            if "error" in r:
                rows.append([name, _size(size), "failed: " + r["error"][:80], *[""] * 7, _load(r)])
                continue
            rows.append([name, _size(size), fmt(r.get("fit_seconds"), 1), fmt(r.get("top_n_seconds"), 1),
                         _mb(r.get("peak_rss_mb")), _mb(r.get("top_n_peak_rss_mb")), _mb(r.get("rss_before_top_n_mb")),
                         _mb(r.get("jvm_peak_rss_mb")), _mb(r.get("executor_peak_rss_mb")),
                         _mb(r.get("peak_rss_total_mb")), _load(r)])
    lines += ["", ("Each model fitted with its defaults, then top 10 for every user, in a fresh process. Memory "
                   "in MiB: the Python process's peak (data included), its peak during top_n alone next to its "
                   "RSS just before top_n (the difference is what top_n adds), the Spark JVMs' peaks, and the "
                   "total of Python and JVMs."), ""]
    lines += table(["model", "ratings", "fit s", "top_n s (all users)", "peak RSS (Python)", "peak during top_n",
                    "RSS before top_n", "driver JVM peak", "executor JVM peak", "peak total", "load at start"], rows)
    kept = [(name, size, r) for name, entries in models.items() for size, r in entries.items()
            if isinstance(r, dict) and r.get("kept_movies")]
    if kept:
        lines += ["", "EASE's weights cover " + "; ".join(
            f"{r['kept_movies']:,} of {sizes.get(size, {}).get('movies', 0):,} movies at {_size(size)} "
            f"({r.get('weights_dtype', '?')})" for name, size, r in kept)
            + " (the most-rated, up to `max_items`; the others score 0)."]
    main = {name: entries for name, entries in res.get("models", {}).items() if name.startswith("movierec ")}
    for name, entries in main.items():
        lines += ["", f"{name}: the command's whole process tree (Python and the Spark JVM), polled every 0.5 s:", ""]
        rows = []
        for size, r in entries.items():
            if "error" in r and "wall_seconds" not in r:
                rows.append([_size(size), "failed: " + r["error"][:80], "", "", "", "", _load(r)])
                continue
            wall = fmt(r.get("wall_seconds"), 0) + (f" ({r['error'][:60]})" if "error" in r else "")
            rows.append([_size(size), wall, _mb(r.get("tree_peak_rss_mb")), _mb(r.get("peak_rss_mb")),
                         _mb(r.get("jvm_peak_rss_mb")), _mb(r.get("peak_rss_sum_mb")), _load(r)])
        lines += table(["ratings", "wall s", "peak RSS of the tree", "Python peak", "JVM peak",
                        "sum of the peaks (upper bound)", "load at start"], rows)
        command = next((r.get("command") for r in entries.values() if r.get("command")), None)
        if command:
            lines += ["", f"Command: `{command}`."]
    growth = res.get("growth", {})
    steps = sorted({step for g in growth.values() for step in g}, key=lambda step: [int(s) for s in step.split("→")])
    if steps:
        lines += ["", "Growth from one size to the next, as a factor (the data's growth first):", ""]
        header = ["model"]
        for step in steps:
            small, large = step.split("→")
            header += [f"{_size(small)} → {_size(large)}: fit", "top_n", "peak total"]
        data_row = ["data: ratings / users × movies"]
        for step in steps:
            a, b = (sizes.get(s, {}) for s in step.split("→"))
            if a and b:
                cells = (b["users"] * b["movies"]) / (a["users"] * a["movies"])
                data_row += [f"{b['ratings'] / a['ratings']:.1f}× / {cells:.1f}×", "", ""]
            else:
                data_row += ["–", "", ""]
        rows = [data_row]
        for name, g in growth.items():
            if not g:
                continue
            row = [name]
            for step in steps:
                r = g.get(step, {})
                fit = r.get("fit_seconds", r.get("wall_seconds"))
                row += [_times(fit), _times(r.get("top_n_seconds")), _times(r.get("peak_rss_total_mb"))]
            rows.append(row)
        lines += table(header, rows)
        lines += ["", "For the main job, \"fit\" is the command's wall time and \"peak total\" its tree's peak."]
    return lines


def _times(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}×"


def _status(met: bool | None) -> str:
    return "–" if met is None else ("**met**" if met else "**missed**")


def targets(docs: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Return the rows of the Targets table: target, measured, met/missed, margin."""
    rows: list[list[str]] = []
    acc = docs.get("accuracy", {}).get("results", {}).get("summary", {})
    for ensemble in (ENSEMBLE3, ENSEMBLE4):
        s = acc.get(ensemble)
        if not s:
            continue
        beats = s.get("vs_best_member", {})
        if beats:
            worst = min(beats.items(), key=lambda item: item[1]["margin"])
            met = all(b["margin"] > 0 for b in beats.values())
            rows.append([f"{ensemble}: RMSE below its best member on every fold",
                         f"{sum(b['margin'] > 0 for b in beats.values())}/{len(beats)} folds",
                         _status(met), f"worst fold {worst[0]}: {worst[1]['margin']:+.4f}"])
        if len(beats) >= 5 or s["rmse"]["n"] >= 5:
            mean = s["rmse"]["mean"]
            rows.append([f"{ensemble}: u1–u5 mean RMSE <= {ENSEMBLE_MEAN_MAX}", fmt(mean), _status(mean <= ENSEMBLE_MEAN_MAX),
                         f"{ENSEMBLE_MEAN_MAX - mean:+.4f}"])
        u1 = s.get("u1_rmse")
        if u1 is not None:
            rows.append([f"{ensemble}: u1 RMSE <= {ENSEMBLE_U1_MAX}", fmt(u1), _status(u1 <= ENSEMBLE_U1_MAX),
                         f"{ENSEMBLE_U1_MAX - u1:+.4f}"])
    ranking = docs.get("ranking", {}).get("results", {}).get("models", {})
    for name, r in ranking.items():
        if name.startswith(RANKING_ENSEMBLE) and "ndcg" in r:
            rows.append([f"{name}: nDCG@10 >= {NDCG_MIN:.2f}", fmt(r["ndcg"]), _status(r["ndcg"] >= NDCG_MIN),
                         f"{r['ndcg'] - NDCG_MIN:+.4f}"])
    speed_models = docs.get("speed", {}).get("results", {}).get("models", {})
    speed = speed_models.get("SurpriseSVD", {})
    if speed.get("speedup_vs_recipe"):
        value = speed["speedup_vs_recipe"]
        rows.append([f"top_n for all users >= {SPEEDUP_MIN:.0f}× faster than Surprise's recipe (SurpriseSVD)",
                     f"{value:.0f}×", _status(value >= SPEEDUP_MIN), f"{value / SPEEDUP_MIN:.1f}× the target"])
    for name, r in speed_models.items():
        if "time_ratio" in r:
            rows.append([f"{name}: top_n <= {TIME_RATIO_MAX:g}× its members' top_n sum",
                         f"{_times(r['time_ratio'], 2)} ({r['top_n_seconds']:.3f} s / {r['members_top_n_seconds_sum']:.3f} s)",
                         _status(r["time_ratio"] <= TIME_RATIO_MAX), f"{TIME_RATIO_MAX - r['time_ratio']:+.2f}×"])
        if "rss_ratio" in r:
            rows.append([f"{name}: peak RSS <= {RSS_RATIO_MAX:g}× its largest member's",
                         f"{_times(r['rss_ratio'], 2)} ({r['peak_rss_mb']:.0f} / {r['largest_member_peak_rss_mb']:.0f} MiB)",
                         _status(r["rss_ratio"] <= RSS_RATIO_MAX), f"{RSS_RATIO_MAX - r['rss_ratio']:+.2f}×"])
    rows += _scale_targets(docs.get("scale", {}).get("results", {}))
    rows += _history_targets(docs.get("history", {}).get("results", {}))
    rows += _serve_targets(docs.get("serve", {}).get("results", {}))
    return rows


def _serve_targets(res: dict[str, Any]) -> list[list[str]]:
    from benchmarks.serve import serve_targets

    return serve_targets(res)


def _serve_section(doc: dict[str, Any]) -> list[str]:
    from benchmarks.serve import serve_section

    return serve_section(doc)


def _history_targets(res: dict[str, Any]) -> list[list[str]]:
    """Return the history suite's two rows: the ensemble's history nDCG against its in-fit and popularity's."""
    row = res.get("models", {}).get("ensemble", {})
    popularity = res.get("models", {}).get("popularity", {}).get("history_ndcg")
    history, in_fit = row.get("history_ndcg"), row.get("in_fit_ndcg")
    missing = row.get("history_unavailable") or row.get("history_error")
    if not row:
        return []
    if history is None:
        why = f"— ({(missing or 'not measured')[:60]})"
        return [[f"ensemble's history lists >= {HISTORY_IN_FIT_MIN:g}× its in-fit nDCG@10", why, _status(None), "–"],
                [f"ensemble's history lists >= {HISTORY_POPULARITY_MIN:g}× popularity's nDCG@10", why, _status(None), "–"]]
    rows = []
    if in_fit:
        ratio = history / in_fit
        rows.append([f"ensemble's history lists >= {HISTORY_IN_FIT_MIN:g}× its in-fit nDCG@10",
                     f"{ratio:.3f}× ({history:.4f} / {in_fit:.4f})", _status(ratio >= HISTORY_IN_FIT_MIN),
                     f"{ratio - HISTORY_IN_FIT_MIN:+.3f}×"])
    if popularity:
        ratio = history / popularity
        rows.append([f"ensemble's history lists >= {HISTORY_POPULARITY_MIN:g}× popularity's nDCG@10",
                     f"{ratio:.2f}× ({history:.4f} / {popularity:.4f})", _status(ratio >= HISTORY_POPULARITY_MIN),
                     f"{ratio - HISTORY_POPULARITY_MIN:+.2f}×"])
    return rows


def history_section(doc: dict[str, Any]) -> list[str]:
    """Return the history suite's table: each model's nDCG@10 from a visitor's history and in fit."""
    res = doc["results"]
    figures = res["figures"]
    lines = [f"## Lists from a visitor's history ({figures['dataset']}, benchmarks/history.py)", ""]
    lines += provenance(doc) + [""]
    rows = []
    for name, r in res["models"].items():
        reason = r.get("history_unavailable") or r.get("history_error")
        history = fmt(r["history_ndcg"]) if r.get("history_ndcg") is not None else f"— ({reason})"
        in_fit = fmt(r["in_fit_ndcg"]) if r.get("in_fit_ndcg") is not None else (
            f"— ({r.get('in_fit_unavailable') or r.get('in_fit_error')})")
        seconds = r.get("history_seconds_per_call")
        rows.append([name, r.get("model", ""), history, in_fit, _times(r.get("history_over_in_fit"), 3),
                     _times(r.get("history_over_popularity"), 2), "–" if seconds is None else f"{seconds * 1000:.1f}"])
    lines += table(["model", "what", "nDCG@10 from history", "nDCG@10 in fit", "history / in fit",
                    "history / popularity", "ms per history call"], rows)
    return lines


def _scale_targets(res: dict[str, Any]) -> list[list[str]]:
    """Return the scale rows: the main job at 25M (time, memory) and the slowest top_n at 25M."""
    rows: list[list[str]] = []
    models = res.get("models", {})
    main = models.get(SCALE_MAIN_JOB, {}).get(SCALE_TARGET_SIZE)
    label = _size(SCALE_TARGET_SIZE)
    if main and main.get("wall_seconds") is not None:
        minutes = main["wall_seconds"] / 60
        done = "error" not in main
        rows.append([f"main job at {label}: <= {MAIN_JOB_MINUTES_MAX:g} min",
                     f"{minutes:.1f} min" + ("" if done else f" ({main['error'][:40]})"),
                     _status(done and minutes <= MAIN_JOB_MINUTES_MAX), f"{MAIN_JOB_MINUTES_MAX - minutes:+.1f} min"])
        if main.get("tree_peak_rss_mb") is not None:
            gb = main["tree_peak_rss_mb"] / 1024
            rows.append([f"main job at {label}: peak RSS <= {MAIN_JOB_GB_MAX:g} GB", f"{gb:.1f} GiB",
                         _status(gb <= MAIN_JOB_GB_MAX), f"{MAIN_JOB_GB_MAX - gb:+.1f} GiB"])
    top = {name: entries[SCALE_TARGET_SIZE] for name, entries in models.items()
           if name != SCALE_MAIN_JOB and isinstance(entries.get(SCALE_TARGET_SIZE), dict)}
    timed = {name: r["top_n_seconds"] for name, r in top.items() if r.get("top_n_seconds") is not None}
    if timed:
        slowest = max(timed, key=timed.get)
        minutes = timed[slowest] / 60
        failed = sorted(name for name, r in top.items() if "error" in r)
        rows.append([f"every model's top_n for all users at {label} <= {TOP_N_MINUTES_MAX:g} min",
                     f"slowest {slowest} {minutes:.1f} min" + (f"; failed: {', '.join(failed)}" if failed else ""),
                     _status(minutes <= TOP_N_MINUTES_MAX and not failed), f"{TOP_N_MINUTES_MAX - minutes:+.1f} min"])
    return rows


def render(docs: dict[str, dict[str, Any]], folder: Path | None = None) -> str:
    """Return the markdown page for the suite documents ``docs`` ({suite: parsed JSON})."""
    lines = [
        "# Benchmarks",
        "",
        ("<!-- Generated by `python -m benchmarks` (benchmarks/render.py) from benchmarks/results/*.json: "
        "do not edit by hand. -->"),
        "",
        ("Every table on this page is regenerated by `make bench` (`python -m benchmarks`), which runs the "
        "four suites and writes one JSON file per suite under `benchmarks/results/` (machine, versions, "
        "date and the command included); `python -m benchmarks.render` rebuilds the page from those files "
        "alone. One suite: `python -m benchmarks --suite ranking`; a check of the harness in a minute: "
        "`python -m benchmarks --quick` (written under `benchmarks/results/quick/`)."),
        "",
        ("The machine is small (2 cores) and was shared with other jobs while these ran: times are medians "
        "where repeated, ratios are between numbers of one run, and absolute seconds are noisy."),
        "",
        "## Targets",
        "",
    ]
    rows = targets(docs)
    if rows:
        lines += table(["target", "measured", "status", "margin"], rows)
    else:
        lines += ["No suite results yet."]
    sections = {"accuracy": accuracy_section, "ranking": ranking_section, "speed": speed_section,
                "scale": scale_section, "history": history_section, "serve": _serve_section}
    for suite, section in sections.items():
        lines.append("")
        if suite in docs:
            try:
                lines += section(docs[suite])
            except (KeyError, TypeError, ValueError) as err:
                lines += [f"## {suite}", "", f"benchmarks/results/{suite}.json could not be rendered: {err!r}"]
        else:
            lines += [f"## {suite}", "", f"Not run yet: `python -m benchmarks --suite {suite}`."]
    if folder is not None:
        lines += [""] + rating_record_section(folder) + ranking_search_section(folder)
        for path in sorted(folder.glob("history-*.json")):  # --suite history --dataset <other archive>
            lines += [""] + history_section(json.loads(path.read_text()))
        others = sorted(p.name for p in folder.glob("*.json") if p.stem not in SUITES and not p.stem.startswith("history-"))
        if others:
            lines += ["", "## Per-adapter scripts", "",
                      "The adapters' own scripts (`benchmarks/spark_als.py`, `benchmarks/surprise_topn.py`, "
                      "`benchmarks/sagemaker_fm.py`) run separately and write: "
                      + ", ".join(f"`benchmarks/results/{name}`" for name in others) + "."]
    return "\n".join(lines) + "\n"


def rating_record_section(folder: Path) -> list[str]:
    """Return MyFMBayes with features (bfm.json) and the stacked ensemble (stacked.json), when present."""
    import json

    lines: list[str] = []
    bfm, stacked = folder / "bfm.json", folder / "stacked.json"
    if bfm.exists():
        doc = json.loads(bfm.read_text())
        lines += ["## MyFMBayes with features (benchmarks/bfm.py)", "",
                  (f"Command: `{doc['command']}` ({doc['date'][:10]}). Settings: {doc['params']}; chosen by "
                  f"{doc['selection']['how']}."), ""]
        lines += table(["fold", "RMSE", "fit s"], [[fold, fmt(v["rmse"]), f"{v['fit_seconds']:.1f}"]
                                                   for fold, v in doc["folds"].items()])
        lines += ["", f"Mean RMSE {doc['figures']['mean_rmse']:.4f}; targets {doc['targets']}.", ""]
    if stacked.exists():
        doc = json.loads(stacked.read_text())
        lines += ["## Stacked ensemble (benchmarks/stacked.py)", "",
                  (f"Command: `{doc['command']}` ({doc['date'][:10]}). Members: {doc['members']}; "
                  f"stacking_folds={doc['stacking_folds']}. Chosen by {doc['selection']['how']}."), ""]
        rows = [[f["fold"], fmt(f["stacked"]), f["best_member"], fmt(f["members"][f["best_member"]]),
                 fmt(f["inverse_error"]), "yes" if f["stacked_below_best_member"] else "no"] for f in doc["folds"]]
        mean = doc["mean"]
        rows.append(["mean", fmt(mean["stacked"]), "bfm", fmt(mean["member_bfm"]), fmt(mean["inverse_error"]),
                     f"{mean['stacked_below_best_member_folds']} of {len(doc['folds'])}"])
        lines += table(["fold", "stacked RMSE", "best member", "its RMSE", "1/RMSE weights", "stacked below it"],
                       rows)
        lines += ["", f"Targets {doc['targets']}.", ""]
    return lines


def ranking_search_section(folder: Path) -> list[str]:
    """Return the candidate ranking families of benchmarks/ranking_search.py (ranking_search.json), when present."""
    import json

    path = folder / "ranking_search.json"
    if not path.exists():
        return []
    doc = json.loads(path.read_text())
    lines = ["## Candidate ranking families (benchmarks/ranking_search.py)", "",
             (f"Command: `{doc['command']}`. The ranking suite's split; each family's setting chosen on its "
             "validation split, alone or summed with EASE as z-scores; the test column is for that setting only."), ""]
    lines += table(["family", "role", "setting", "validation nDCG@10", "test nDCG@10"],
                   [[r["family"], r["role"], ", ".join(f"{k}={v:g}" for k, v in r["params"].items()),
                     fmt(r["validation_ndcg"]), fmt(r["test_ndcg"])] for r in doc["rows"]])
    return lines


def write(folder: Path = RESULTS_DIR, output: Path = ROOT / "docs" / "benchmarks.md") -> Path:
    """Render every suite JSON in ``folder`` into ``output``; return ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(load(folder), folder))
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    print(write(args.results, args.output))


if __name__ == "__main__":
    main()
