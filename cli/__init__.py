"""The ``pymonitor`` command line (typer); ``main`` is the console-script entry point."""
