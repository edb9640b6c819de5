# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Three recommenders and their ensemble, step by step
#
# Three recommenders trained on MovieLens 100K — Spark's ALS, Surprise's SVD and SageMaker's
# Factorization Machines — each one's RMSE and top 5 movies per user, then their ensemble: each
# model's scores standardized and divided by its RMSE, summed. This notebook walks through it end to
# end with the library.
#
# It is a [jupytext](https://jupytext.readthedocs.io) "percent" script: run it as
# `python examples/three_models.py` (CI does), or open it as a notebook with
# `jupytext --to ipynb examples/three_models.py`. The data comes from `$MOVIEREC_DATA`
# (default `~/.cache/movierec`) and is downloaded from GroupLens when absent.

# %%
import warnings

import pandas as pd

import movierec

# Pairs a model cannot score (a movie absent from u1.base) are left out of RMSE with a warning;
# the count is the same for every model and is printed once below instead.
warnings.simplefilter("ignore", movierec.MovieRecWarning)
pd.set_option("display.width", 120)

# %% [markdown]
# ## The data: MovieLens 100K, official fold u1
# 80,000 ratings to train on and 20,000 to test on. Titles come from `u.item`.

# %%
data = movierec.load_movielens("ml-100k")
fold = movierec.official_folds("ml-100k", which=("u1",))[0]
train, test = fold.train, fold.test
titles = data.items.set_index("movieId")["title"]
unseen = int((~test["movieId"].isin(train["movieId"])).sum())
print(f"u1: {len(train):,} train / {len(test):,} test ratings; {unseen} test pairs have a movie unseen in train")

USERS = [1, 2, 3]


def show_top(name: str, model: movierec.Recommender) -> None:
    """Print the top 5 unseen movies of each user in USERS, with titles."""
    top = model.top_n(users=USERS, n=5)
    for user, rows in top.groupby("userId"):
        print(f"Top 5 for user {user} ({name}):")
        for row in rows.itertuples():
            print(f"  {row.rank}. {titles[row.movieId]}  ({row.score:.3f})")


# %% [markdown]
# ## 1. Spark ALS
# Matrix factorization by alternating least squares, on a local Spark session that the model starts
# and stops (`close()`). Defaults: rank 10, 10 iterations, `reg_param=0.1`, `cold_start_strategy="drop"`.

# %%
als = movierec.SparkALS(random_state=0)
als.fit(train)
print(f"SparkALS     RMSE {als.rmse(test):.4f}")
show_top("SparkALS", als)

# %% [markdown]
# ## 2. Surprise SVD
# Funk's biased SVD trained by SGD (100 factors, 20 epochs); the top-N comes from the learned arrays.

# %%
svd = movierec.SurpriseSVD(random_state=0)
svd.fit(train)
print(f"SurpriseSVD  RMSE {svd.rmse(test):.4f}")
show_top("SurpriseSVD", svd)

# %% [markdown]
# ## 3. SageMaker Factorization Machines (local backend)
# The model of SageMaker's built-in FM algorithm — one-hot users and movies, 2,625 features on
# ml-100k — trained on this machine with `backend="local"`. `backend="sagemaker"` runs the same model
# as a SageMaker training job instead (see the docs' SageMaker set-up page).

# %%
fm = movierec.SageMakerFM(random_state=0)
fm.fit(train)
print(f"SageMakerFM  RMSE {fm.rmse(test):.4f}")
show_top("SageMakerFM", fm)

# %% [markdown]
# ## 4. The combined ensemble
# `WeightedEnsemble` standardizes each member's scores, `z = (s - mu) / sigma`, and sums `z / e` where
# `e` is the member's RMSE. The ensemble measures `e` itself, on a 10 % hold-out of the training part
# (then refits every member on all of it), so the test part is never used to build the model.
# `candidates=20` is the candidates method: each model proposes its own top 20 and the ensemble re-ranks
# their union. The ensemble fits its own copies of `als`, `svd` and `fm` (`ensemble.models_`): the
# models fitted above are left as they are.

# %%
ensemble = movierec.WeightedEnsemble([als, svd, fm], candidates=20, random_state=0)
ensemble.fit(train)
weights = pd.DataFrame(
    {"hold-out RMSE": ensemble.errors_, "weight 1/RMSE": ensemble.weights_, "mu": ensemble.score_mean_,
     "sigma": ensemble.score_std_},
    index=["SparkALS", "SurpriseSVD", "SageMakerFM"],
)
print(weights.round(4))
ensemble_rmse = ensemble.rmse(test)
print(f"WeightedEnsemble RMSE {ensemble_rmse:.4f}")
show_top("WeightedEnsemble", ensemble)

# %% [markdown]
# ## 5. Side by side
# The test RMSE of the ensemble's members (its copies, fitted on all of u1.base) and of the blend.

# %%
names = ["SparkALS", "SurpriseSVD", "SageMakerFM"]
members = {name: model.rmse(test) for name, model in zip(names, ensemble.models_)}
summary = pd.Series({**members, "WeightedEnsemble": ensemble_rmse}, name="test RMSE")
print(summary.round(4).to_string())

# %%
ensemble.close()  # its SparkALS copy's hold on the Spark session
als.close()  # stops the Spark session SparkALS started
