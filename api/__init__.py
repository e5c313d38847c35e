"""The REST API (``pymonitor[api]``): alerts and their acknowledgements over HTTP, for phones and scripts."""
