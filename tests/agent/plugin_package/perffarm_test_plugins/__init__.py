"""A third party's plug-ins, one or more in every perffarm group, used by the tests.

The folder holds what ``pip install`` would leave: the package and its ``.dist-info``
(with ``entry_points.txt``), so putting the folder on ``sys.path`` (``PYTHONPATH`` for a
subprocess) installs it. Each module is a minimal working plug-in of one group; the
examples in docs/plugins.md are copied from these files (a test checks they still match).
"""
