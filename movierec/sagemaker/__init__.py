"""Amazon SageMaker integration: RecordIO-protobuf data files and related helpers.

``SageMakerConfig`` is light; the AWS code (``movierec.sagemaker.backend``, ``.aws``) imports
boto3 only when used, so importing this package does not.
"""

from movierec.sagemaker.config import SageMakerConfig

__all__ = ["SageMakerConfig"]
