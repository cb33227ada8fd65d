"""botocore's shipped data (service models, partitions), loaded without a botocore session.

`botocore.session.get_session().get_service_model(...)` reads the AWS configuration first, so it raises
ProfileNotFound when AWS_PROFILE names a profile that does not exist (common on CI and developer machines),
although a service model needs no profile at all. Everything in safe-bedrock that reads botocore's data goes
through this module instead: one loader per process, whose instance cache keeps every parsed file.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

__all__ = ["RUNTIME", "data", "loader", "service_model"]

RUNTIME: Final = "bedrock-runtime"


@functools.cache
def loader() -> Loader:
    """The process's botocore data loader (honours AWS_DATA_PATH, as botocore's own sessions do)."""
    from botocore.loaders import create_loader  # noqa: PLC0415 - botocore's data loads only when needed

    # What a botocore session would search: AWS_DATA_PATH first, then botocore's own data.
    return create_loader(os.environ.get("AWS_DATA_PATH"))


@functools.cache
def service_model(service_name: str = RUNTIME) -> ServiceModel:
    """A service's model as botocore ships it (latest API version), parsed once per process."""
    from botocore.model import ServiceModel  # noqa: PLC0415

    return ServiceModel(loader().load_service_model(service_name, "service-2"), service_name)


def data(name: str) -> Any:
    """A botocore data file such as "partitions" or "endpoints", parsed once per process."""
    return loader().load_data(name)
