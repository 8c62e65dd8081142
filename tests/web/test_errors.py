"""Every kind of refusal has its one HTTP status."""

import pytest

from sentiment_core import operations
from sentiment_core.errors import OperationError
from web.errors import STATUSES, status_of

KINDS = [
    kind
    for kind in vars(operations).values()
    if isinstance(kind, type) and issubclass(kind, OperationError) and kind is not OperationError
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_each_kind_of_operation_error_has_a_status(kind: type[OperationError]) -> None:
    assert status_of(kind("code", "message")) == STATUSES[kind]


def test_the_statuses_are_one_per_kind() -> None:
    assert len(set(STATUSES.values())) == len(STATUSES)
