"""Built-in measurements, registered through the ``perffarm.measurements`` entry points."""
