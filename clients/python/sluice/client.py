"""Client and Reservation: the Python face of the C ABI (clients/c/sluice.h)."""

from __future__ import annotations

import ctypes
import math
import threading
from types import TracebackType
from typing import Any, Optional, Type

from . import _native
from .errors import InvalidArgument, QuotaExceeded, SluiceError
from .usage import usage_from_response

NUSD_PER_USD = 1_000_000_000
MAX_TOKENS = 2**32  # per count of one call (sluice.h SLUICE_MAX_TOKENS)
MAX_HTTP_STATUS = 999  # sluice.h SLUICE_MAX_HTTP_STATUS
MAX_MODEL_VERSION_BYTES = 128  # sluice.h SLUICE_MAX_MODEL_VERSION_BYTES
OUTCOMES = _native.OUTCOMES  # how a call ended, as commit's outcome= takes it
_MAX_NS = 2**64 - 1


def _tokens(name: str, value: Any) -> int:
    # Checked here: ctypes would wrap -1 or 2**64 silently into range.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or value > MAX_TOKENS:
        raise InvalidArgument(
            f"{name} is {value}; token counts are whole numbers from 0 to {MAX_TOKENS}"
        )
    return value


def _c_bytes(value: Any, shown: str, nul_shown: str) -> bytes:
    """A str (as UTF-8) or bytes as a C string takes it: refused if it holds a NUL.

    ``shown`` names the value in the encoding error, ``nul_shown`` in the NUL one.
    """
    if isinstance(value, str):
        try:
            raw = value.encode()
        except UnicodeEncodeError as e:
            raise InvalidArgument(
                f"{shown} cannot be encoded as UTF-8 ({e.reason}); "
                "pass bytes, or a str without lone surrogates"
            ) from None
    else:
        raw = value
    if b"\0" in raw:
        raise InvalidArgument(
            f"{nul_shown} contains a NUL character, which the C ABI cannot carry; remove it"
        )
    return raw


def _attribute(name: str, value: Any) -> _native.Attr:
    """One attribute as the C ABI takes it: NUL-terminated bytes.

    A str is encoded as UTF-8; bytes are taken as they are (they need not be
    UTF-8). The C ABI's strings end at a NUL, so a NUL inside is refused
    rather than cut off; the other bounds are the library's to check.
    """
    if not isinstance(value, (str, bytes)):
        raise TypeError(f"attribute {name}={value!r} must be a str or bytes")
    shown = f"attribute {name}={value!r}"
    raw = _c_bytes(value, shown, shown)
    return _native.Attr(name.encode(), raw)


def _duration_ns(name: str, seconds: Any) -> int:
    """Seconds as the C ABI's nanoseconds; 0 is "not reported"."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not (math.isfinite(seconds) and 0 <= seconds <= _MAX_NS / 1e9)
    ):
        raise InvalidArgument(
            f"{name} is {seconds!r}; give the seconds the call took as a number from 0, "
            f"e.g. {name}=0.8125, or None"
        )
    return min(_MAX_NS, round(seconds * 1e9))


def _outcome(outcome: Any) -> int:
    if isinstance(outcome, str) and outcome in OUTCOMES:
        return OUTCOMES.index(outcome)
    raise InvalidArgument(
        f"outcome is {outcome!r}; give one of {', '.join(OUTCOMES[1:])}, or None"
    )


def _http_status(status: Any) -> int:
    if (
        isinstance(status, bool)
        or not isinstance(status, int)
        or not 0 <= status <= MAX_HTTP_STATUS
    ):
        raise InvalidArgument(
            f"http_status is {status!r}; give the provider's HTTP status, a whole number "
            f"up to {MAX_HTTP_STATUS} (e.g. 200), or None"
        )
    return status


def _model_version(version: Any) -> bytes:
    """The version as the C ABI takes it: at most 128 bytes, no NUL."""
    if not isinstance(version, (str, bytes)):
        raise InvalidArgument(
            f"model_version is {version!r}; give the version the response named as a str, "
            "e.g. model_version='gpt-4o-2024-08-06', or None"
        )
    raw = _c_bytes(version, f"model_version {version!r}", "model_version")
    if len(raw) > MAX_MODEL_VERSION_BYTES:
        raise InvalidArgument(
            f"model_version is {len(raw)} bytes, at most {MAX_MODEL_VERSION_BYTES}; "
            "pass the version the response named, e.g. 'gpt-4o-2024-08-06'"
        )
    return raw


def _call_report(
    latency_s: Any, ttft_s: Any, outcome: Any, http_status: Any, model_version: Any
) -> Optional[_native.CallReport]:
    """What commit reports of the call; None when it reports nothing."""
    given = (latency_s, ttft_s, outcome, http_status, model_version)
    if all(value is None for value in given):
        return None
    report = _native.CallReport()
    if latency_s is not None:
        report.latency_ns = _duration_ns("latency_s", latency_s)
    if ttft_s is not None:
        report.ttft_ns = _duration_ns("ttft_s", ttft_s)
    if outcome is not None:
        report.outcome = _outcome(outcome)
    if http_status is not None:
        report.http_status = _http_status(http_status)
    if model_version is not None:
        report.model_version = _model_version(model_version)
    return report


def _hold_ns(hold_for: Optional[float]) -> int:
    if hold_for is None:
        return 0
    if isinstance(hold_for, bool) or not isinstance(hold_for, (int, float)) or not hold_for > 0:
        raise ValueError(f"hold_for is {hold_for!r}; give a positive number of seconds or None")
    return max(1, round(hold_for * 1e9))


class Client:
    """A client attached to the segment of a running sluiced.

    Usage::

        with sluice.Client("sluice-demo") as client:
            with client.reserve(team="pricing", feature="quote-agent", model="gpt-4o",
                                input_tokens=1200, max_output_tokens=800) as r:
                resp = call_the_model(...)
                r.commit_response(resp)   # or r.commit(input_tokens=..., output_tokens=...)

    ``reserve`` raises ``QuotaExceeded`` when a limit says no. Calls on one
    Client are serialized by a lock, so threads may share it; one Client per
    thread never waits. ``close()`` (or leaving the ``with``) detaches; the
    sidecar then settles whatever the client left open.
    """

    def __init__(self, segment: str = "sluice-demo") -> None:
        """Attaches to ``segment`` (the policy's ``segment.name``).

        Raises SluiceError with a one-line message naming the fix: no such
        segment (is sluiced running?), permission denied, no library, ...
        """
        self._handle: Optional[int] = None
        self._lib = _native.library()
        self._lock = threading.Lock()
        self.segment = segment
        handle = ctypes.c_void_p()
        with self._lock:
            rc = self._lib.sluice_attach(segment.encode(), ctypes.byref(handle))
            if rc != _native.OK:
                raise self._error(rc)
        self._handle = handle.value

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Detaches; further calls raise SluiceError. Idempotent."""
        with self._lock:
            if self._handle is not None:
                self._lib.sluice_detach(self._handle)
                self._handle = None

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"<sluice.Client segment={self.segment!r} {state}>"

    # -- calls --------------------------------------------------------------

    def reserve(
        self,
        *,
        input_tokens: int,
        max_output_tokens: int,
        hold_for: Optional[float] = None,
        **attributes: str,
    ) -> Reservation:
        """Reserves the worst case of one call on every limit it matches.

        ``attributes`` are the call's attributes as keywords: ``team=``,
        ``feature=``, ``user=``, ``model=`` (the model is the attribute
        named ``model``), ... Values are str (sent as UTF-8) or bytes (sent
        as they are), 1 to 255 bytes without NUL; at most 16 attributes.
        ``hold_for`` (seconds) keeps the reservation past this process,
        until commit or cancel from any process or until it expires.

        Returns the Reservation (a context manager that cancels unless
        committed); raises QuotaExceeded when a limit rejects the call, and
        InvalidArgument (nothing charged) for a call outside those bounds or
        a token count outside 0..MAX_TOKENS.
        """
        n = len(attributes)
        array = (_native.Attr * n)()
        for i, (name, value) in enumerate(attributes.items()):
            array[i] = _attribute(name, value)
        decision = _native.Decision()
        with self._lock:
            rc = self._lib.sluice_reserve(
                self._live(),
                array if n else None,
                n,
                _tokens("input_tokens", input_tokens),
                _tokens("max_output_tokens", max_output_tokens),
                _hold_ns(hold_for),
                ctypes.byref(decision),
            )
            if rc != _native.OK:
                raise self._error(rc)
            if not decision.admitted:
                raise self._rejection(
                    decision.reason, decision.limit_index, decision.retry_after_ns
                )
        return Reservation(self, decision)

    def charge(self, *, input_tokens: int, output_tokens: int, **attributes: str) -> float:
        """Reserves and commits a call already made (batch jobs); returns its cost in USD.

        Raises QuotaExceeded when the limits refuse it: the usage is then
        not recorded. Its keywords besides the token counts are the call's
        attributes; to report how the call went, reserve and ``commit``.
        """
        r = self.reserve(
            input_tokens=input_tokens, max_output_tokens=output_tokens, **attributes
        )
        return r.commit(input_tokens=input_tokens, output_tokens=output_tokens)

    def limit_name(self, index: int) -> Optional[str]:
        """The name of limit ``index`` in the policy last seen, None if none."""
        with self._lock:
            name: bytes = self._lib.sluice_limit_name(self._live(), index)
        return name.decode() or None

    # -- for Reservation ----------------------------------------------------

    def _commit(
        self,
        reservation_id: int,
        input_tokens: int,
        output_tokens: int,
        report: Optional[_native.CallReport] = None,
    ) -> int:
        cost = ctypes.c_uint64()
        with self._lock:
            rc = self._lib.sluice_commit_report(
                self._live(),
                reservation_id,
                input_tokens,
                output_tokens,
                None if report is None else ctypes.byref(report),
                ctypes.byref(cost),
            )
            if rc != _native.OK:
                raise self._error(rc)
        return cost.value

    def _cancel(self, reservation_id: int) -> None:
        with self._lock:
            rc = self._lib.sluice_cancel(self._live(), reservation_id)
            if rc != _native.OK:
                raise self._error(rc)

    def _extend(self, reservation_id: int, output_tokens: int) -> Optional[QuotaExceeded]:
        """None when admitted, else the refusal."""
        extension = _native.Extension()
        with self._lock:
            rc = self._lib.sluice_extend(
                self._live(), reservation_id, output_tokens, ctypes.byref(extension)
            )
            if rc != _native.OK:
                raise self._error(rc)
            if extension.admitted:
                return None
            return self._rejection(
                extension.reason, extension.limit_index, extension.retry_after_ns
            )

    # -- under self._lock ---------------------------------------------------

    def _live(self) -> int:
        if self._handle is None:
            raise SluiceError(
                f"the client of segment '{self.segment}' is closed; create a new sluice.Client",
                "not_attached",
            )
        return self._handle

    def _error(self, rc: int) -> SluiceError:
        # The C ABI's last error is per thread; read it on the failing call's thread.
        message: bytes = self._lib.sluice_last_error()
        text = message.decode(errors="replace")
        if rc == _native.ERR_INVALID_ARGUMENT:
            return InvalidArgument(text)
        code: bytes = self._lib.sluice_strerror(rc)
        return SluiceError(text, code.decode())

    def _rejection(self, reason: int, limit_index: int, retry_after_ns: int) -> QuotaExceeded:
        name: bytes = self._lib.sluice_reason_name(reason)
        limit: bytes = self._lib.sluice_limit_name(self._handle, limit_index)
        return QuotaExceeded(name.decode(), limit.decode() or None, retry_after_ns / 1e9)


class Reservation:
    """One admitted call: commit it with the actual usage, cancel it, or extend it.

    As a context manager, leaving the block without a commit (an exception
    included) cancels the reservation, refunding its estimate. Outside a
    ``with``, commit or cancel it yourself: one left open is held until this
    process exits, when sluiced settles it at its estimate, as abandoned.

    Attributes:
        id: the reservation id.
        estimated_cost_nusd: the worst case reserved, in nano-dollars.
        shadow_rejects: shadow limits that would have rejected the call.
        cost_nusd: the committed cost in nano-dollars (None until commit).
        last_refusal: the QuotaExceeded of the last refused extend, if any.
    """

    def __init__(self, client: Client, decision: _native.Decision) -> None:
        self._client = client
        self.id: int = decision.reservation_id
        self.estimated_cost_nusd: int = decision.estimated_cost_nusd
        self.shadow_rejects: int = decision.shadow_rejects
        self.cost_nusd: Optional[int] = None
        self.last_refusal: Optional[QuotaExceeded] = None
        self._settled = False

    @property
    def estimated_cost(self) -> float:
        """The worst case reserved, in USD."""
        return self.estimated_cost_nusd / NUSD_PER_USD

    @property
    def cost(self) -> Optional[float]:
        """The committed cost in USD (None until commit)."""
        return None if self.cost_nusd is None else self.cost_nusd / NUSD_PER_USD

    @property
    def settled(self) -> bool:
        """Committed or cancelled."""
        return self._settled

    def commit(
        self,
        input_tokens: int,
        output_tokens: int,
        *,
        latency_s: Optional[float] = None,
        ttft_s: Optional[float] = None,
        outcome: Optional[str] = None,
        http_status: Optional[int] = None,
        model_version: Optional[str] = None,
    ) -> float:
        """Settles the call at its actual usage; returns its cost in USD.

        The keywords say how the model call went, for the audit trail and
        sluiced's per-model metrics; each is optional (None: not reported).
        ``latency_s`` and ``ttft_s`` are the provider's latency and time to
        first token in seconds; ``outcome`` one of OUTCOMES (``"ok"``,
        ``"provider_error"``, ``"timeout"``, ``"cancelled_by_client"``,
        ``"cut_off"``); ``http_status`` at most 999; ``model_version`` at
        most 128 bytes as UTF-8.

        The exact cost in nano-dollars is ``self.cost_nusd`` afterwards.
        Raises SluiceError when the reservation is already settled (or was
        settled as abandoned after its hold expired): nothing is charged
        twice; InvalidArgument for a count outside 0..MAX_TOKENS or a
        report outside those bounds (the reservation stays open).
        """
        in_tokens = _tokens("input_tokens", input_tokens)
        out_tokens = _tokens("output_tokens", output_tokens)
        report = _call_report(latency_s, ttft_s, outcome, http_status, model_version)
        self._check_open()
        try:
            self.cost_nusd = self._client._commit(self.id, in_tokens, out_tokens, report)
        except SluiceError as e:
            self._settled = e.code == "unknown_reservation"
            raise
        self._settled = True
        return self.cost_nusd / NUSD_PER_USD

    def commit_response(self, resp: Any, **report: Any) -> float:
        """``commit`` with the usage of a model response (see usage_from_response).

        ``report`` takes commit's keywords (``latency_s=``, ``outcome=``, ...).
        """
        input_tokens, output_tokens = usage_from_response(resp)
        return self.commit(input_tokens, output_tokens, **report)

    def cancel(self) -> bool:
        """Refunds the reservation; False if it was already settled."""
        if self._settled:
            return False
        self._settled = True
        self._client._cancel(self.id)
        return True

    def extend(self, output_tokens: int) -> bool:
        """Reserves ``output_tokens`` more for a stream running past its estimate.

        Returns False when the budget or rate is gone (stop the stream, then
        commit what was produced); the reservation is then as it was, and
        ``last_refusal`` says which limit refused and why.
        """
        tokens = _tokens("output_tokens", output_tokens)
        self._check_open()
        refusal = self._client._extend(self.id, tokens)
        if refusal is not None:
            self.last_refusal = refusal
            return False
        return True

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self._settled and not self._client.closed:
            self.cancel()

    def __repr__(self) -> str:
        state = "settled" if self._settled else "open"
        return f"<sluice.Reservation id={self.id} {state}>"

    def _check_open(self) -> None:
        if self._settled:
            raise SluiceError(
                f"reservation {self.id} is already settled; reserve again for a new call",
                "unknown_reservation",
            )
