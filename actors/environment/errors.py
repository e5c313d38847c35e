"""The one exception of the environment package."""


class EnvironmentDataError(ValueError):
    """Environment or failure data that cannot be analysed (shapes, unknown devices); names the field and why."""
