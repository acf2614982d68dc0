"""Lambda's patches to moto: the account's concurrency quota, held as Lambda holds it."""

from __future__ import annotations

from typing import Any

from filepipe.local.moto_patches import Uninstall, moto_patch, replace
from filepipe.local.services.awslambda.quotas import LambdaRefusal, check_reservation


@moto_patch(
    "moto.awslambda.models.LambdaBackend.put_function_concurrency",
    "moto.awslambda.models.LambdaBackend.get_function",
    "moto.awslambda.models.LambdaBackend.list_functions",
    "moto.awslambda.exceptions.InvalidParameterValueException",
)
def lambda_concurrency_quota(quota: int) -> Uninstall:
    """Refuse reservations as Lambda does in an account with ``quota`` concurrent executions.

    moto checks only when MOTO_LAMBDA_CONCURRENCY_QUOTA is set, and then always keeps 100 unreserved; Lambda
    keeps 100, or the whole quota when it is lower (a new account's). Also relies on each function's
    ``function_name`` and ``reserved_concurrency``.
    """
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend

    original = LambdaBackend.put_function_concurrency

    def put_function_concurrency(self: Any, function_name: str, reserved_concurrency: str) -> str:
        function = self.get_function(function_name)
        others = sum(
            int(other.reserved_concurrency or 0)
            for other in self.list_functions()
            if other.function_name != function.function_name
        )
        try:
            check_reservation(quota, others, int(reserved_concurrency))
        except LambdaRefusal as refusal:
            raise InvalidParameterValueException(str(refusal)) from refusal
        result: str = original(self, function_name, reserved_concurrency)
        return result

    return replace(LambdaBackend, put_function_concurrency=put_function_concurrency)
