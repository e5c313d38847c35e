"""The one exception of the alerting package."""


class AlertConfigError(ValueError):
    """A rule, route, schedule, escalation or channel config that cannot work; names the field and why."""
