"""The one exception of the summary package."""

from __future__ import annotations


class SummaryError(ValueError):
    """Input the summary cores cannot take; the message names the field, index or key at fault."""
