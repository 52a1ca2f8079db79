"""``saksi``, the operator's command: its entry point and one module per group.

``__main__`` is the launcher (standard library only, so that without the server
packages it says what to install); ``main`` builds the parser and runs a
command; ``run`` holds the exit-code table and turns every failure into one
line; ``args`` and ``connect`` are what the commands share (key files, region
codes, where the log is). The command groups: ``keys``, ``log`` (init, check),
``grants`` and ``submit`` (signed writes), ``provision``, ``serve``,
``election`` and ``importing`` (regions, results), ``demo``. The election's
logic (parsers, importers, recaps, the demo's scenario) stays in ``domains``.

Importing ``cli`` itself loads nothing.
"""
