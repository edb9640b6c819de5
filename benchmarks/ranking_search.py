"""Candidate ranking members tried against the ranking suite's EASE, on its validation split.

``python benchmarks/ranking_search.py`` writes ``benchmarks/results/ranking_search.json`` and prints
a table. The split is the ranking suite's (ml-100k, stratified 75/25, ``random_state=42``; its
validation part: a stratified 10 % of the training part, ``random_state=0``). Each family's
setting is chosen by validation nDCG@10 alone (as the member, and as a z-score sum with EASE, the
ensemble's own formula with equal weights); the test column is computed once, for the chosen
setting, to show what it would have given. None of these families is in the library: this script
records why (none beats EASE, and none adds to EASE + implicit ALS what it would need for the
suite's 0.50 target). numpy only, about three minutes.

Families: EASE with a popularity-scaled penalty (the dropout view of Steck's EDLAE), RP3beta
(Paudel et al. 2017), item kNN and user kNN (cosine, top-k neighbours), EASE on users, PureSVD
(Cremonesi et al. 2010), GF-CF (Shen et al. 2021: a normalized item-item filter plus an ideal low-pass
filter from a truncated SVD), and a denoising autoencoder (Mult-DAE, Liang et al. 2018: 200 tanh units,
100 epochs of Adam in numpy).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.linalg import svds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS_DIR, data_home
from movierec import load_movielens, stratified_split
from movierec._core.ranking import top_k
from movierec.metrics import ranking_metrics

K = 10
REFERENCE_PAIRS = 50_000


def binary_matrix(ratings: pd.DataFrame, users: np.ndarray, items: np.ndarray) -> sparse.csr_matrix:
    rows = pd.Index(users).get_indexer(ratings["userId"])
    cols = pd.Index(items).get_indexer(ratings["movieId"])
    return sparse.csr_matrix((np.ones(len(ratings)), (rows, cols)), shape=(len(users), len(items)))


def ease_scores(X: sparse.csr_matrix, l2: float, dropout: float = 0.0) -> np.ndarray:
    gram = (X.T @ X).toarray()
    gram[np.diag_indices_from(gram)] += l2 + dropout / (1 - dropout) * np.diag(gram)
    P = np.linalg.inv(gram)
    B = P / -np.diag(P)
    np.fill_diagonal(B, 0.0)
    return np.asarray(X @ B)


def user_ease_scores(X: sparse.csr_matrix, l2: float) -> np.ndarray:
    return ease_scores(sparse.csr_matrix(X.T), l2).T


def rp3beta_scores(X: sparse.csr_matrix, alpha: float, beta: float) -> np.ndarray:
    user_step = sparse.diags(1 / np.maximum(X.sum(1).A1, 1)) @ X
    item_step = sparse.diags(1 / np.maximum(X.sum(0).A1, 1)) @ X.T
    W = (item_step @ user_step).toarray() ** alpha / np.maximum(X.sum(0).A1, 1)[None, :] ** beta
    np.fill_diagonal(W, 0.0)
    return np.asarray(X @ W)


def _cosine_top(G: np.ndarray, neighbours: int) -> np.ndarray:
    norms = np.sqrt(np.diag(G))
    W = G / (np.outer(norms, norms) + 1e-9)
    np.fill_diagonal(W, 0.0)
    kth = -np.partition(-W, neighbours, axis=0)[neighbours]
    W[W < kth[None, :]] = 0.0
    return W


def item_knn_scores(X: sparse.csr_matrix, neighbours: int) -> np.ndarray:
    return np.asarray(X @ _cosine_top((X.T @ X).toarray(), neighbours))


def user_knn_scores(X: sparse.csr_matrix, neighbours: int) -> np.ndarray:
    return np.asarray(_cosine_top((X @ X.T).toarray(), neighbours).T @ X)


def puresvd_scores(X: sparse.csr_matrix, factors: int) -> np.ndarray:
    """PureSVD (Cremonesi et al. 2010): the history projected on the top singular vectors of the items."""
    *_, vt = svds(X.astype(float), k=factors, random_state=0)
    return np.asarray(X @ vt.T @ vt)


def gfcf_scores(X: sparse.csr_matrix, factors: int, alpha: float) -> np.ndarray:
    """GF-CF (Shen et al. 2021): the normalized item-item filter plus alpha times an ideal low-pass filter."""
    user_degree, item_degree = (np.maximum(np.asarray(X.sum(axis)).ravel(), 1.0) for axis in (1, 0))
    R = sparse.diags(user_degree**-0.5) @ X.astype(float) @ sparse.diags(item_degree**-0.5)
    linear = np.asarray(X @ (R.T @ R).toarray())
    *_, vt = svds(R, k=factors, random_state=0)
    ideal = np.asarray(X @ sparse.diags(item_degree**-0.5) @ vt.T @ vt @ sparse.diags(item_degree**0.5))
    return linear + alpha * ideal


def dae_scores(X: sparse.csr_matrix, l2: float, hidden: int = 200, epochs: int = 100, batch: int = 64,
               dropout: float = 0.5, lr: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Mult-DAE (Liang et al. 2018): dropout on the L2-normalized history, one tanh layer, softmax over movies, Adam."""
    rng = np.random.default_rng(seed)
    dense = X.toarray().astype(np.float32)
    n_items = dense.shape[1]
    bound = np.float32(np.sqrt(6 / (n_items + hidden)))
    params = {"W1": rng.uniform(-bound, bound, (n_items, hidden)).astype(np.float32),
              "b1": np.zeros(hidden, np.float32),
              "W2": rng.uniform(-bound, bound, (hidden, n_items)).astype(np.float32),
              "b2": np.zeros(n_items, np.float32)}
    first, second = ({k: np.zeros_like(v) for k, v in params.items()} for _ in range(2))

    def normalized(a: np.ndarray) -> np.ndarray:
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-8)

    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(dense))
        for start in range(0, len(dense), batch):
            x = dense[order[start : start + batch]]
            given = normalized(x * (rng.random(x.shape) > dropout) / (1 - dropout))
            h = np.tanh(given @ params["W1"] + params["b1"])
            logits = h @ params["W2"] + params["b2"]
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = (p * x.sum(1, keepdims=True) - x) / len(x)  # gradient of the multinomial log-likelihood
            pre = (g @ params["W2"].T) * (1 - h * h)
            grads = {"W2": h.T @ g + l2 * params["W2"], "b2": g.sum(0), "W1": given.T @ pre + l2 * params["W1"],
                     "b1": pre.sum(0)}
            step += 1
            for k, grad in grads.items():
                first[k] = 0.9 * first[k] + 0.1 * grad
                second[k] = 0.999 * second[k] + 0.001 * grad * grad
                params[k] -= lr * first[k] / (1 - 0.9**step) / (np.sqrt(second[k] / (1 - 0.999**step)) + 1e-8)
    h = np.tanh(normalized(dense) @ params["W1"] + params["b1"])
    return (h @ params["W2"] + params["b2"]).astype(np.float64)


FAMILIES = {
    "EASE (suite's grid)": (ease_scores, [{"l2": v} for v in (200.0, 400.0, 800.0)]),
    "EASE, popularity-scaled penalty": (
        ease_scores, [{"l2": l2, "dropout": p} for l2 in (100.0, 200.0, 400.0) for p in (0.1, 0.25, 0.4)]),
    "RP3beta": (rp3beta_scores, [{"alpha": a, "beta": b} for a in (0.6, 0.8, 1.0) for b in (0.2, 0.35, 0.5)]),
    "item kNN": (item_knn_scores, [{"neighbours": k} for k in (50, 100, 200, 400)]),
    "user kNN": (user_knn_scores, [{"neighbours": k} for k in (30, 60, 120)]),
    "EASE on users": (user_ease_scores, [{"l2": v} for v in (200.0, 400.0, 800.0)]),
    "PureSVD": (puresvd_scores, [{"factors": k} for k in (10, 20, 50)]),
    "GF-CF": (gfcf_scores, [{"factors": k, "alpha": a} for k in (32, 64, 128) for a in (0.3, 1.0)]),
    "Mult-DAE": (dae_scores, [{"l2": v} for v in (0.003, 0.01, 0.03)]),
}


class Split:
    """One fit/score pair of frames, with the matrix, the reference pairs and the nDCG of any scores."""

    def __init__(self, fit: pd.DataFrame, score: pd.DataFrame) -> None:
        self.users, self.items = np.sort(fit["userId"].unique()), np.sort(fit["movieId"].unique())
        self.X, self.score = binary_matrix(fit, self.users, self.items), score
        rng = np.random.default_rng(0)
        self.pairs = (rng.integers(0, len(self.users), REFERENCE_PAIRS), rng.integers(0, len(self.items), REFERENCE_PAIRS))

    def z(self, scores: np.ndarray) -> np.ndarray:
        reference = scores[self.pairs]
        return (scores - reference.mean()) / reference.std()

    def ndcg(self, scores: np.ndarray) -> float:
        scores = np.array(scores, dtype=float)
        seen = self.X.tocoo()
        scores[seen.row, seen.col] = -np.inf
        rows, cols, values = top_k(scores, K)
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows) + 1
        top = pd.DataFrame({"userId": self.users[rows], "movieId": self.items[cols], "score": values, "rank": rank})
        return float(ranking_metrics(top, self.score, k=K)[f"ndcg@{K}"])


def main() -> None:
    started = time.perf_counter()
    ratings = load_movielens("ml-100k", data_home=data_home(), download=False).ratings
    train, test = stratified_split(ratings, 0.25, random_state=42)
    fit_part, valid = stratified_split(train, 0.1, random_state=0)
    splits = {"validation": Split(fit_part, valid), "test": Split(train, test)}
    reference = {name: ease_scores(split.X, 400.0) for name, split in splits.items()}  # the suite's tuned EASE
    rows = []
    for family, (scorer, grid) in FAMILIES.items():
        tried = []
        for params in grid:
            member = scorer(splits["validation"].X, **params)
            with_ease = splits["validation"].z(member) + splits["validation"].z(reference["validation"])
            tried.append((params, splits["validation"].ndcg(member), splits["validation"].ndcg(with_ease)))
        for role, column in (("alone", 1), ("with EASE", 2)):
            params, *_ = best = max(tried, key=lambda t: t[column])
            member = scorer(splits["test"].X, **params)
            scores = member if role == "alone" else splits["test"].z(member) + splits["test"].z(reference["test"])
            rows.append({"family": family, "role": role, "params": params, "validation_ndcg": best[column],
                         "test_ndcg": splits["test"].ndcg(scores)})
            print(f"{family:34s} {role:10s} {json.dumps(params):38s} validation {best[column]:.4f}  "
                  f"test {rows[-1]['test_ndcg']:.4f}", flush=True)
    out = {"benchmark": "ranking_search", "command": "python benchmarks/ranking_search.py",
           "duration_seconds": time.perf_counter() - started, "k": K, "rows": rows}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "ranking_search.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
