"""ctypes bindings of libsluice.so (the C ABI of clients/c/sluice.h).

The library is found, in order:

1. ``SLUICE_LIB``: a path to libsluice.so (no fallback when it is set);
2. ``ctypes.util.find_library("sluice")``: the loader's search path
   (``ldconfig``, ``LD_LIBRARY_PATH``);
3. where ``meson install`` put it (``_install_paths.py``, written at install).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import List, Optional

from .errors import SluiceError

# Status codes (sluice.h SLUICE_OK, SLUICE_ERR_*).
OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_UNKNOWN_RESERVATION = 7


class Attr(ctypes.Structure):
    """``sluice_attr``."""

    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class Decision(ctypes.Structure):
    """``sluice_decision``."""

    _fields_ = [
        ("reservation_id", ctypes.c_uint64),
        ("retry_after_ns", ctypes.c_uint64),
        ("estimated_cost_nusd", ctypes.c_uint64),
        ("admitted", ctypes.c_int32),
        ("reason", ctypes.c_int32),
        ("limit_index", ctypes.c_int32),
        ("shadow_rejects", ctypes.c_uint32),
    ]


class Extension(ctypes.Structure):
    """``sluice_extension``."""

    _fields_ = [
        ("retry_after_ns", ctypes.c_uint64),
        ("admitted", ctypes.c_int32),
        ("reason", ctypes.c_int32),
        ("limit_index", ctypes.c_int32),
    ]


# How a call ended (sluice.h SLUICE_OUTCOME_*): the names, at their values.
OUTCOMES = ("unreported", "ok", "provider_error", "timeout", "cancelled_by_client", "cut_off")


class CallReport(ctypes.Structure):
    """``sluice_call_report``."""

    _fields_ = [
        ("latency_ns", ctypes.c_uint64),
        ("ttft_ns", ctypes.c_uint64),
        ("outcome", ctypes.c_int32),
        ("http_status", ctypes.c_uint32),
        ("model_version", ctypes.c_char_p),
    ]


_NOT_FOUND = (
    "libsluice.so not found: set SLUICE_LIB to its path "
    "(e.g. SLUICE_LIB=build/clients/c/libsluice.so) or install Sluice with meson install"
)


def _installed_path() -> Optional[str]:
    try:
        from . import _install_paths  # type: ignore[attr-defined]
    except ImportError:  # running from the source tree
        return None
    path: str = _install_paths.LIBRARY
    return path


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    u64, i32, p = ctypes.c_uint64, ctypes.c_int32, ctypes.c_void_p
    signatures = {
        "sluice_attach": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(p)]),
        "sluice_detach": (None, [p]),
        "sluice_reserve": (
            ctypes.c_int,
            [p, ctypes.POINTER(Attr), ctypes.c_size_t, u64, u64, u64, ctypes.POINTER(Decision)],
        ),
        "sluice_commit": (ctypes.c_int, [p, u64, u64, u64, ctypes.POINTER(u64)]),
        "sluice_commit_report": (
            ctypes.c_int,
            [p, u64, u64, u64, ctypes.POINTER(CallReport), ctypes.POINTER(u64)],
        ),
        "sluice_cancel": (ctypes.c_int, [p, u64]),
        "sluice_extend": (ctypes.c_int, [p, u64, u64, ctypes.POINTER(Extension)]),
        "sluice_limit_name": (ctypes.c_char_p, [p, i32]),
        "sluice_reason_name": (ctypes.c_char_p, [i32]),
        "sluice_strerror": (ctypes.c_char_p, [ctypes.c_int]),
        "sluice_last_error": (ctypes.c_char_p, []),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def load() -> ctypes.CDLL:
    """Loads libsluice afresh (see the module docstring for where from).

    Raises SluiceError (code ``"library_not_found"``) with a one-line
    message naming SLUICE_LIB when no library can be loaded.
    """
    explicit = os.environ.get("SLUICE_LIB")
    if explicit:
        candidates: List[str] = [explicit]
    else:
        candidates = [c for c in (ctypes.util.find_library("sluice"), _installed_path()) if c]
    lib = None
    problem = ""
    for candidate in candidates:
        try:
            lib = ctypes.CDLL(candidate)
            break
        except OSError as e:
            problem = str(e).replace("\n", " ")
    if lib is None:
        if explicit:
            raise SluiceError(
                f"cannot load SLUICE_LIB={explicit}: {problem}; "
                "point SLUICE_LIB at libsluice.so (e.g. build/clients/c/libsluice.so)",
                "library_not_found",
            )
        raise SluiceError(_NOT_FOUND, "library_not_found")
    if (
        ctypes.sizeof(Decision) != 40
        or ctypes.sizeof(Extension) != 24
        or ctypes.sizeof(CallReport) != 24 + ctypes.sizeof(ctypes.c_char_p)
    ):
        raise SluiceError("libsluice structs do not match this platform's layout", "incompatible")
    try:
        return _declare(lib)
    except AttributeError as e:
        raise SluiceError(
            f"{candidates[0]} is not a libsluice of this version ({e}); "
            "rebuild it or point SLUICE_LIB at the right one",
            "incompatible",
        ) from None


_library: Optional[ctypes.CDLL] = None
_library_lock = threading.Lock()


def library() -> ctypes.CDLL:
    """The process's libsluice, loaded on first use."""
    global _library
    with _library_lock:
        if _library is None:
            _library = load()
        return _library
