"""Amazon SageMaker integration: where ``SageMakerFM(backend="sagemaker")`` runs, and how.

``SageMakerConfig`` says where (bucket, role, region, instances); ``SageMakerBackend`` trains,
tunes, deploys and invokes Factorization Machines there, and returns a training job's weights as
``JobWeights`` (read from its artifact on first access) and a tuning job's best job as
``TuningOutcome``. The RecordIO-protobuf files ([`recordio`][movierec.sagemaker.recordio]), the model artifacts
([`artifact`][movierec.sagemaker.artifact]) and the AWS calls ([`aws`][movierec.sagemaker.aws]) have their own modules. Importing this package
imports neither boto3 nor sagemaker: they are imported by the first AWS call.
"""

from movierec.sagemaker.backend import JobWeights, SageMakerBackend, TuningOutcome
from movierec.sagemaker.config import SageMakerConfig

__all__ = ["JobWeights", "SageMakerBackend", "SageMakerConfig", "TuningOutcome"]
