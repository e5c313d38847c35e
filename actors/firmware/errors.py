"""The exception tree of the firmware package: one base, one subclass per kind of bad input."""


class FirmwareError(ValueError):
    """Bad firmware input (a version, an advisory file, a report); the message names the field and why."""


class VersionError(FirmwareError):
    """A version string no registered scheme can parse, or one its scheme rejects."""


class AdvisoryError(FirmwareError):
    """A malformed advisory file; the message names the entry and the field."""
