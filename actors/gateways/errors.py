"""The one exception of the gateway-load package."""


class GatewayLoadError(ValueError):
    """A deployment or stats input that cannot be analysed (shapes, capacities); names the field and why."""
