"""User-facing errors: mistakes a user can fix, reported by the CLI as one line without a traceback."""
import json

# numpy's words for an array too large to index at all (a ValueError, not a MemoryError)
_TOO_BIG = ("Maximum allowed size exceeded", "Maximum allowed dimension exceeded", "array is too big")


class UserError(Exception):
    """A mistake in the input (config, flags, data, environment) that the message tells how to fix."""


class BackendUnavailable(UserError):
    """The requested array backend cannot be used on this machine."""


class ConfigError(UserError):
    """A configuration value is unknown, out of range or inconsistent."""


def written(value) -> str:
    """A config value as the user wrote it in TOML or a KEY=VALUE flag, for error messages: JSON's spelling
    (``true``, ``null``, ``"abc"``, ``[1, 2]``) rather than Python's (``True``, ``None``, ``'abc'``); anything
    JSON cannot spell as its ``repr``."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def bounded(key: str, value, high: int | None, low: int = 1) -> int:
    """``int(value)``, checked to lie in [low, high] (``high`` None: no upper bound); raises ConfigError
    otherwise. The upper bounds of size options (episodes, batch sizes, ...) lie far above any real use: a typo
    such as 2**40 episodes is refused with the config, before any file is touched, instead of failing in an
    allocation (or running for days) once training runs."""
    value = int(value)
    if high is None and value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value}")
    if high is not None and not low <= value <= high:
        raise ConfigError(f"{key} must lie in [{low}, {high}], got {value}")
    return value


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that an array did not fit: a MemoryError (numpy's ``_ArrayMemoryError`` is one) or
    numpy's ValueError for a size beyond what this machine can address at all."""
    return isinstance(exc, MemoryError) or (isinstance(exc, ValueError) and str(exc).startswith(_TOO_BIG))
