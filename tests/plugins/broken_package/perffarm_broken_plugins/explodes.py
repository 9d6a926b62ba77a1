"""Fails while it is imported, as a plug-in with a bug at module level does."""

raise RuntimeError("the sensor library is missing its calibration file")
