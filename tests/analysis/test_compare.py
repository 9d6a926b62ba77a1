"""The public face of the comparison: what other parts import from perffarm.analysis.compare."""

from __future__ import annotations

from perffarm.analysis import bootstrap, compare, median_weights, ranks, runs, samples, verdict


def test_the_facade_offers_each_module_s_public_names() -> None:
    owners = {
        "compare_runs": runs,
        "Override": runs,
        "Presence": runs,
        "ResultComparison": runs,
        "series_key_text": runs,
        "compare_samples": samples,
        "compare_batch": samples,
        "SamplePair": samples,
        "Verdict": verdict,
        "Comparison": verdict,
        "DEFAULT_MIN_EFFECT": verdict,
        "DEFAULT_ALPHA": verdict,
        "mann_whitney": ranks,
        "smallest_mann_whitney_p": ranks,
        "exact_ratio_ci": bootstrap,
        "bootstrap_median_weights": median_weights,
    }
    for name, module in owners.items():
        assert getattr(compare, name) is getattr(module, name), name
    assert set(owners) <= set(compare.__all__)
