"""The endpoint resources a SageMaker backend created, and their deletion even when it is forgotten.

An endpoint is billed per hour for as long as it exists, so its names are recorded before each
create call and deleted on ``close``, on a failed ``deploy`` or endpoint call, and, through a
``weakref.finalize`` on the backend, when a backend that was never closed is garbage-collected.
"""

from __future__ import annotations

import logging

from movierec.sagemaker.aws import AwsClients

__all__ = ["EndpointResources", "delete_forgotten"]

logger = logging.getLogger(__name__)


class EndpointResources:
    """Names of the endpoint, endpoint config and model a backend created and has not deleted yet.

    Kept apart from the backend so a ``weakref.finalize`` can delete them without keeping the
    backend alive. ``aws_holder`` is the backend's list of (at most one) clients, filled when the
    backend makes its first call.
    """

    def __init__(self, aws_holder: list[AwsClients]) -> None:
        self.aws_holder = aws_holder
        self.endpoint: str | None = None
        self.endpoint_config: str | None = None
        self.model: str | None = None

    def any(self) -> bool:
        """Return whether anything is left to delete."""
        return any((self.endpoint, self.endpoint_config, self.model))

    def delete_all(self) -> bool:
        """Delete endpoint, then its config, then the model; return True if all are gone."""
        if not self.any():
            return True
        aws = self.aws_holder[0]
        ok = True
        for kind in ("endpoint", "endpoint_config", "model"):
            name = getattr(self, kind)
            if name is not None:
                if aws.delete_quietly(kind, name):
                    setattr(self, kind, None)
                else:
                    ok = False
        return ok


def delete_forgotten(created: EndpointResources) -> None:
    """Delete what a garbage-collected, never closed backend left (its ``weakref.finalize``)."""
    if created.any():
        logger.warning("a SageMakerBackend was not closed: deleting its endpoint %s", created.endpoint)
        created.delete_all()
