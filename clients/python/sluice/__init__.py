"""Sluice for Python: admit or reject an LLM call against the limits of a local sluiced.

    import sluice

    with sluice.Client("sluice-demo") as client:
        try:
            with client.reserve(team="pricing", feature="quote-agent", model="gpt-4o",
                                input_tokens=1200, max_output_tokens=800) as r:
                resp = call_the_model(...)
                cost_usd = r.commit_response(resp)   # r.cost_nusd is exact
        except sluice.QuotaExceeded as e:
            print(f"refused by {e.limit}: {e.reason}, retry in {e.retry_after:.1f} s")

A thin ctypes layer over libsluice.so (the C ABI, clients/c/sluice.h),
found through SLUICE_LIB, the loader's path, or where meson installed it.
Standard library only.
"""

from .client import MAX_TOKENS, NUSD_PER_USD, OUTCOMES, Client, Reservation
from .errors import InvalidArgument, QuotaExceeded, SluiceError
from .usage import usage_from_response

__all__ = [
    "Client",
    "InvalidArgument",
    "MAX_TOKENS",
    "NUSD_PER_USD",
    "OUTCOMES",
    "QuotaExceeded",
    "Reservation",
    "SluiceError",
    "usage_from_response",
]
__version__ = "0.1.0"
