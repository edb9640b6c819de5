"""MyFMBayes: myfm's Bayesian factorization machine, with optional side, time and implicit features.

One job per module: ``_model`` the estimator, ``_features`` the feature rows (one matrix per
month, user and movie, and a block name per column), ``_sampler`` myfm's Gibbs sampler and the
folding of its samples into numpy arrays.
"""

from movierec.models.myfm_bayes._model import MyFMBayes

__all__ = ["MyFMBayes"]
