"""The exceptions of the Sluice client.

``SluiceError`` is something to fix (no sidecar, no library, a reservation
settled twice), ``InvalidArgument`` the kind of it that is a bad argument;
``QuotaExceeded`` is a decision: a limit said no. They are unrelated on
purpose, so that ``except SluiceError`` never swallows a rejection.
"""

from __future__ import annotations

from typing import Optional


class SluiceError(Exception):
    """An error the caller can fix; ``str(e)`` is one line saying how.

    ``code`` is the C ABI's status name: ``"not_found"``,
    ``"permission_denied"``, ``"unknown_reservation"``, ``"library_not_found"``, ...
    """

    def __init__(self, message: str, code: str = "internal") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidArgument(SluiceError, ValueError):
    """A call Sluice cannot take as given; nothing was charged.

    A token count below 0 or above ``MAX_TOKENS``, an attribute with an
    empty, too long or NUL-containing name or value, too many attributes.
    Also a ``ValueError``; ``code`` is ``"invalid_argument"``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, "invalid_argument")


class QuotaExceeded(Exception):
    """A limit rejected the call.

    Attributes:
        reason: why, in snake_case: ``"rate_limited"``, ``"budget_exhausted"``,
            ``"model_not_allowed"``, ``"unknown_model_price"``, ...
        limit: the name of the limit that rejected, or None when no single
            limit did (an unknown model price, a missing policy).
        retry_after: seconds until the call could pass (the rate recovers,
            the budget window ends); 0.0 when not known.
    """

    def __init__(self, reason: str, limit: Optional[str], retry_after: float) -> None:
        by = f" by {limit}" if limit else ""
        retry = f"; retry in {retry_after:.3f} s" if retry_after > 0 else ""
        super().__init__(f"rejected{by}: {reason}{retry}")
        self.reason = reason
        self.limit = limit
        self.retry_after = retry_after
