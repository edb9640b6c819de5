"""The HTML report of a run: plots (``_plots``) and the page around them (``_html``)."""

from __future__ import annotations

from movierec._report._html import render

__all__ = ["render"]
