"""SageMakerFM: SageMaker's Factorization Machines, trained locally in numpy or on SageMaker.

One job per module: ``_model`` the estimator, ``_trainer`` the FM maths and the local trainer,
``_features`` the design rows (one-hot ids and side features), ``_tune`` the local random search.
The SageMaker backend itself lives in [`movierec.sagemaker`][movierec.sagemaker].
"""

from movierec.models.sagemaker_fm._model import SageMakerFM

__all__ = ["SageMakerFM"]
