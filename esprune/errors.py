"""User-facing errors: mistakes a user can fix, reported by the CLI as one line without a traceback."""


class UserError(Exception):
    """A mistake in the input (config, flags, data, environment) that the message tells how to fix."""


class BackendUnavailable(UserError):
    """The requested array backend cannot be used on this machine."""


class ConfigError(UserError):
    """A configuration value is unknown, out of range or inconsistent."""
