"""The local FM trainer's vectorized pieces against plain one-row-at-a-time references."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from movierec.data import features as _features
from movierec.models.sagemaker_fm import _trainer

B1, B2 = 0.9, 0.999


# -- plain references ------------------------------------------------------------------------------
def reference_gradients(X, y, w0, w, V, predictor_type):
    """Loss and gradients one row at a time, from the textbook pairwise formula."""
    X = X.toarray()
    loss, g0 = 0.0, 0.0
    gw, gV = np.zeros_like(w), np.zeros_like(V)
    for x, target in zip(X, y):
        nz = np.flatnonzero(x)
        pred = w0 + sum(x[f] * w[f] for f in nz)
        pred += sum(V[f] @ V[g] * x[f] * x[g] for f, g in itertools.combinations(nz, 2))
        if predictor_type == "binary_classifier":
            loss += math.log1p(math.exp(-abs(pred))) + max(pred, 0.0) - target * pred
            r = 1.0 / (1.0 + math.exp(-pred)) - target
        else:
            loss += 0.5 * (pred - target) ** 2
            r = pred - target
        g0 += r
        for f in nz:  # d pred / d v_f = x_f * sum_{g != f} x_g v_g
            gw[f] += r * x[f]
            gV[f] += r * x[f] * sum((x[g] * V[g] for g in nz if g != f), np.zeros(V.shape[1]))
    return loss, g0, gw, gV


def reference_adam(weight, mean, var, grad, lr, wd, clip, eps, t):
    """One MXNet Adam step of a single value, in Python floats."""
    g = grad + wd * weight
    if clip is not None:
        g = min(max(g, -clip), clip)
    mean = B1 * mean + (1 - B1) * g
    var = B2 * var + (1 - B2) * g * g
    return weight - lr * math.sqrt(1 - B2**t) / (1 - B1**t) * mean / (math.sqrt(var) + eps), mean, var


def reference_fit(X, y, hp, seed):
    """The trainer written plainly: dense gradients, lazy Adam value by value (float64)."""
    rng = np.random.default_rng(seed)
    X, dim, k = X.toarray(), X.shape[1], hp["num_factors"]
    w0 = rng.normal(0.0, hp["bias_init_sigma"], 1)[0]
    w = rng.normal(0.0, hp["linear_init_sigma"], dim)
    V = rng.normal(0.0, hp["factors_init_sigma"], (dim, k))
    state = {"w0": [0.0, 0.0], "w": np.zeros((2, dim)), "V": np.zeros((2, dim, k))}
    t = 0
    for _ in range(hp["epochs"]):
        order = rng.permutation(len(X))
        for start in range(0, len(X), hp["mini_batch_size"]):
            rows = order[start : start + hp["mini_batch_size"]]
            Xb = sparse.csr_matrix(X[rows])
            _, g0, gw, gV = reference_gradients(Xb, y[rows], w0, w, V, hp["predictor_type"])
            t += 1
            scale = 1.0 / len(rows)
            w0, *state["w0"] = reference_adam(
                w0, *state["w0"], g0 * scale, hp["bias_lr"], hp["bias_wd"], None, 1e-8, t
            )
            for f in np.flatnonzero(np.abs(X[rows]).sum(axis=0)):  # the touched columns only
                w[f], state["w"][0, f], state["w"][1, f] = reference_adam(
                    w[f], state["w"][0, f], state["w"][1, f], gw[f] * scale, hp["linear_lr"], hp["linear_wd"],
                    None, 1e-8, t,
                )
                for c in range(k):
                    V[f, c], state["V"][0, f, c], state["V"][1, f, c] = reference_adam(
                        V[f, c], state["V"][0, f, c], state["V"][1, f, c], gV[f, c] * scale, hp["factors_lr"],
                        hp["factors_wd"], None, 1e-8, t,
                    )
    return w0, w, V


# -- strategies ------------------------------------------------------------------------------------
@st.composite
def designs(draw, ragged=True):
    """A small CSR design: random rows (ragged) or one user and one movie column per row, values 1."""
    n = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if ragged and draw(st.booleans()):
        dim = draw(st.integers(1, 7))
        dense = rng.normal(size=(n, dim)) * (rng.random((n, dim)) < 0.5)
        return sparse.csr_matrix(dense), rng
    users, movies = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    cols = np.column_stack([rng.integers(0, users, n), users + rng.integers(0, movies, n)])
    indptr = np.arange(0, 2 * n + 1, 2)
    return sparse.csr_matrix((np.ones(2 * n), cols.ravel(), indptr), shape=(n, users + movies)), rng


# -- gradients -------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(designs(), st.sampled_from(["regressor", "binary_classifier"]), st.integers(1, 4))
def test_vectorized_gradients_equal_the_row_by_row_reference(design, predictor_type, k):
    X, rng = design
    n, dim = X.shape
    y = rng.integers(0, 2, n).astype(float) if predictor_type == "binary_classifier" else rng.normal(3, 1, n)
    w0, w, V = float(rng.normal()), rng.normal(size=dim), rng.normal(size=(dim, k))
    loss, g0, gw, gV = _trainer.batch_gradients(X, y, w0, w, V, predictor_type)
    ref_loss, ref_g0, ref_gw, ref_gV = reference_gradients(X, y, w0, w, V, predictor_type)
    assert loss == pytest.approx(ref_loss, rel=1e-9, abs=1e-9)
    assert g0 == pytest.approx(ref_g0, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(gw, ref_gw, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gV, ref_gV, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    designs(), st.sampled_from(["regressor", "binary_classifier"]), st.floats(0.01, 2.0), st.floats(0.0, 0.1)
)
def test_rescale_and_decay_fold_into_the_gradient(design, predictor_type, rescale, wd):
    X, rng = design
    n, dim = X.shape
    y, w, V = rng.integers(0, 2, n).astype(float), rng.normal(size=dim), rng.normal(size=(dim, 2))
    plain = _trainer.batch_gradients(X, y, 0.1, w, V, predictor_type)
    rows = np.repeat(np.arange(n), np.diff(X.indptr))
    folded = _trainer._gradients(X, rows, y, 0.1, w, V, predictor_type, rescale, (wd, 2 * wd))
    assert folded[:2] == pytest.approx(plain[:2], rel=1e-12)  # the loss and w0's gradient are not rescaled
    np.testing.assert_allclose(folded[2], rescale * plain[2] + wd * w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(folded[3], rescale * plain[3] + 2 * wd * V, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(designs(), st.integers(1, 4))
def test_float32_gradients_are_the_float64_ones_rounded(design, k):
    X, rng = design
    n, dim = X.shape
    y, w, V = rng.normal(3, 1, n), rng.normal(size=dim), rng.normal(size=(dim, k))
    wide = _trainer.batch_gradients(X, y, 0.5, w, V, "regressor")
    narrow = _trainer.batch_gradients(X.astype(np.float32), y.astype(np.float32), 0.5, w.astype(np.float32),
                                      V.astype(np.float32), "regressor")
    assert narrow[2].dtype == narrow[3].dtype == np.float32
    scale = 1 + max(abs(wide[1]), np.abs(wide[3]).max(initial=0))
    assert narrow[0] == pytest.approx(wide[0], rel=1e-4, abs=1e-4)
    np.testing.assert_allclose(narrow[3], wide[3], atol=1e-5 * scale)
    np.testing.assert_allclose(narrow[2], wide[2], atol=1e-5 * scale)


# -- Adam ------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1), st.integers(1, 3), st.sampled_from([None, 0.05]), st.integers(1, 4),
    st.sampled_from([np.float64, np.float32]),
)
def test_lazy_adam_updates_only_the_touched_rows_as_the_reference_does(seed, k, clip, block, dtype):
    rng = np.random.default_rng(seed)
    dim, lr, wd, eps = 9, 0.01, 0.02, 1e-8
    weight = rng.normal(size=(dim, k)).astype(dtype)
    adam = _trainer._Adam(weight.copy(), lr, wd, clip, eps)
    adam.block = block  # several blocks per step
    expected = weight.astype(np.float64)
    moments = np.zeros((2, dim, k))
    for t in (1, 2, 3):
        rows = rng.choice(dim, rng.integers(1, dim + 1), replace=False)  # any order
        grad = rng.normal(size=(len(rows), k))
        current = np.take(adam.weight, rows, axis=0)
        adam.step(rows, current, (0.5 * grad + wd * current).astype(dtype), t)  # g as _gradients gives it
        for i, f in enumerate(rows):
            for c in range(k):
                expected[f, c], moments[0, f, c], moments[1, f, c] = reference_adam(
                    expected[f, c], moments[0, f, c], moments[1, f, c], 0.5 * grad[i, c], lr, wd, clip, eps, t
                )
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(adam.weight, expected, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(adam.mean * (1 - B1), moments[0], rtol=1e-4, atol=tolerance)
    np.testing.assert_allclose(adam.var * (1 - B2), moments[1], rtol=1e-4, atol=tolerance**2)
    untouched = np.all(moments[1] == 0, axis=1)
    np.testing.assert_array_equal(adam.weight[untouched], weight[untouched])  # never touched, never decayed


@pytest.mark.parametrize("clip", [None, 0.05])
def test_scalar_adam_is_the_table_adam_of_one_value(clip, rng):
    table = _trainer._Adam(np.array([[0.3]]), 0.1, 0.01, clip, 1e-8)
    scalar = _trainer._ScalarAdam(0.3, 0.1, 0.01, clip, 1e-8)
    for t, g in enumerate(rng.normal(size=20) * 3, start=1):
        current = table.weight.copy()
        table.step(np.array([0]), current, 0.25 * np.array([[g]]) + 0.01 * current, t)
        scalar.step(g, 0.25, t)
        assert scalar.weight == pytest.approx(table.weight[0, 0], rel=1e-13)


# -- epochs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["one-hot", "values", "ragged"])
def test_shuffled_rows_are_the_rows_of_the_permuted_matrix(kind, rng):
    n = 50
    cols = np.column_stack([rng.integers(0, 6, n), 6 + rng.integers(0, 7, n)]).ravel()
    values = np.ones(2 * n) if kind == "one-hot" else rng.normal(size=2 * n)
    X = sparse.csr_matrix((values, cols, np.arange(0, 2 * n + 1, 2)), shape=(n, 13))
    if kind == "ragged":
        X = (X + sparse.random(n, 13, density=0.2, format="csr", random_state=rng)).tocsr()
    y = rng.normal(size=n)
    shuffled = _trainer._Shuffled(X, y)
    for _ in range(2):  # the buffers are reused
        order = rng.permutation(n)
        indptr, indices, data, ye = shuffled(order)
        expected = X[order]
        got = sparse.csr_matrix((data, indices, indptr), shape=X.shape)
        assert (got != expected).nnz == 0
        np.testing.assert_array_equal(ye, y[order])
        start, stop = 7, 19
        rows = shuffled.entry_rows(indptr, start, stop)
        expected_rows = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
        np.testing.assert_array_equal(rows, expected_rows)


HP = {
    "num_factors": 2, "predictor_type": "regressor", "epochs": 3, "mini_batch_size": 7,
    "bias_lr": 0.1, "linear_lr": 0.05, "factors_lr": 0.05, "bias_wd": 0.01, "linear_wd": 0.001,
    "factors_wd": 0.002, "bias_init_method": "normal", "bias_init_sigma": 0.01,
    "linear_init_method": "normal", "linear_init_sigma": 0.01, "factors_init_method": "normal",
    "factors_init_sigma": 0.1,
}


@pytest.fixture
def small_design(rng):
    n, users, movies = 40, 5, 6
    cols = np.column_stack([rng.integers(0, users, n), users + rng.integers(0, movies, n)]).ravel()
    X = sparse.csr_matrix((np.ones(2 * n), cols, np.arange(0, 2 * n + 1, 2)), shape=(n, users + movies))
    return X, rng.integers(1, 6, n).astype(float)


def test_float64_trainer_is_the_plain_reference_trainer(small_design, monkeypatch):
    X, y = small_design
    monkeypatch.setattr(_trainer, "_DTYPE", np.float64)
    fitted = _trainer.LocalTrainer(HP, random_state=3).fit(X, y)
    w0, w, V = reference_fit(X, y, HP, seed=3)
    assert fitted.w0 == pytest.approx(w0, rel=1e-12)
    np.testing.assert_allclose(fitted.w, w, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(fitted.V, V, rtol=1e-10, atol=1e-13)


def test_float32_trainer_follows_the_float64_one(small_design, monkeypatch):
    X, y = small_design
    narrow = _trainer.LocalTrainer(HP, random_state=3).fit(X, y)
    monkeypatch.setattr(_trainer, "_DTYPE", np.float64)
    wide = _trainer.LocalTrainer(HP, random_state=3).fit(X, y)
    assert narrow.w.dtype == narrow.V.dtype == np.float64  # the backend contract: float64 arrays
    assert narrow.w0 == pytest.approx(wide.w0, abs=1e-5)
    np.testing.assert_allclose(narrow.w, wide.w, atol=1e-5)
    np.testing.assert_allclose(narrow.V, wide.V, atol=1e-5)
    assert not np.allclose(wide.V, _trainer.LocalTrainer(HP, random_state=4).fit(X, y).V, atol=1e-3)


def test_same_seed_same_weights(small_design):
    X, y = small_design
    a, b = (_trainer.LocalTrainer(HP, random_state=0).fit(X, y) for _ in range(2))
    assert a.w0 == b.w0
    np.testing.assert_array_equal(a.w, b.w)
    np.testing.assert_array_equal(a.V, b.V)


# -- the design rows -------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.integers(0, 30))
def test_pair_rows_are_the_sum_of_the_user_and_movie_rows(seed, side, n_pairs):
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    rated_users, rated_items = rng.random(n_users) < 0.8, rng.random(n_items) < 0.8
    rated_users[0] = rated_items[0] = True
    user_side = item_side = None
    if side:
        user_side = sparse.csr_matrix(rng.integers(0, 2, (n_users, 3)) * 0.1)
        item_side = sparse.csr_matrix(rng.integers(0, 2, (n_items, 2)) * 0.1)
    else:
        rated_users[:], rated_items[:] = True, True  # no side data: every known id has ratings
    users, items = _features.design_rows(rated_users, rated_items, user_side, item_side)
    u, i = rng.integers(0, n_users, n_pairs), rng.integers(0, n_items, n_pairs)
    rows = _features.pair_rows(users, items, u, i)
    expected = (users[u] + items[i]).tocsr()
    assert rows.shape == expected.shape and rows.has_canonical_format
    np.testing.assert_array_equal(rows.indptr, expected.indptr)
    np.testing.assert_array_equal(rows.indices, expected.indices)
    np.testing.assert_array_equal(rows.data, expected.data)
