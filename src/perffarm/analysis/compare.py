"""Comparing two sets of samples, and two runs result by result: the public face of the
modules that do it.

- ``perffarm.analysis.verdict``: ``Verdict``, ``Comparison`` and the rule that decides
  (significance and a large enough effect; the defaults ``DEFAULT_ALPHA``,
  ``DEFAULT_MIN_EFFECT``);
- ``perffarm.analysis.ranks``: the Mann-Whitney U test and the Hodges-Lehmann shift;
- ``perffarm.analysis.median_weights``, ``perffarm.analysis.ratio_quantile`` and
  ``perffarm.analysis.bootstrap``: the exact bootstrap interval of the ratio of medians;
- ``perffarm.analysis.welch``: the fallback on stored summaries (Welch's t-test);
- ``perffarm.analysis.samples``: ``compare_samples`` and ``compare_batch``;
- ``perffarm.analysis.runs``: ``compare_runs``, ``Override``, ``Presence``,
  ``ResultComparison``.

What the method is, and why, is in docs/analysis.md.
"""

from __future__ import annotations

from perffarm.analysis.bootstrap import exact_ratio_ci, exact_ratio_ci_rows
from perffarm.analysis.median_weights import bootstrap_median_weights
from perffarm.analysis.ranks import EXACT_LIMIT, mann_whitney, smallest_mann_whitney_p
from perffarm.analysis.runs import (
    Override,
    Presence,
    ResultComparison,
    compare_runs,
    series_key_text,
)
from perffarm.analysis.samples import SamplePair, compare_batch, compare_samples
from perffarm.analysis.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MIN_EFFECT,
    FEW_SAMPLES,
    UNSTABLE_CV,
    Comparison,
    Verdict,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_MIN_EFFECT",
    "EXACT_LIMIT",
    "FEW_SAMPLES",
    "UNSTABLE_CV",
    "Comparison",
    "Override",
    "Presence",
    "ResultComparison",
    "SamplePair",
    "Verdict",
    "bootstrap_median_weights",
    "compare_batch",
    "compare_runs",
    "compare_samples",
    "exact_ratio_ci",
    "exact_ratio_ci_rows",
    "mann_whitney",
    "series_key_text",
    "smallest_mann_whitney_p",
]
