"""Roles as actors: one sub-package per role (a pure core plus a thin pykka shell).

``runtime`` holds what every role shares: clocks, supervision, frame intake, the node process.
``hub`` stores a fleet's readings.
"""
