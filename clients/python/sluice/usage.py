"""Token usage out of a model's response, for ``Reservation.commit_response``."""

from __future__ import annotations

from typing import Any, Optional, Tuple

_INPUT_NAMES = ("prompt_tokens", "input_tokens")
_OUTPUT_NAMES = ("completion_tokens", "output_tokens")


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(usage: Any, names: Tuple[str, ...]) -> Optional[int]:
    for name in names:
        value = _field(usage, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"usage.{name} is {value!r}, not a token count")
        return value
    return None


def usage_from_response(resp: Any) -> Tuple[int, int]:
    """Returns ``(input_tokens, output_tokens)`` from a response's ``usage``.

    Reads an OpenAI-style ``usage`` (``prompt_tokens`` / ``completion_tokens``,
    or ``input_tokens`` / ``output_tokens`` as the Responses API and
    Anthropic name them) from a dict, or from an SDK object with a ``usage``
    attribute; a usage block passed directly works too. A response with input
    but no output count (embeddings) has 0 output tokens.

        >>> usage_from_response({"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
        (12, 3)

    Raises ValueError when there is no usage (ask a stream for it with
    ``stream_options={"include_usage": True}``) or a count is not a
    non-negative int.
    """
    usage = _field(resp, "usage")
    if usage is None:
        usage = resp
    input_tokens = _count(usage, _INPUT_NAMES)
    if input_tokens is None:
        raise ValueError(
            "the response has no usage with prompt_tokens or input_tokens; for a stream, "
            'request it with stream_options={"include_usage": True}'
        )
    output_tokens = _count(usage, _OUTPUT_NAMES)
    return input_tokens, output_tokens or 0
