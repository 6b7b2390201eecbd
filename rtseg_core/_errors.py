"""One root exception, so the CLI can print a clean message for anything the user can fix.

Messages name the file, field or host, the value received and, where there is one, the fix.
"""


class SuiteError(Exception):
    """Root of every error the user can act on; the CLI prints it as one line."""


class ConfigError(SuiteError):
    """A model, search or run configuration is invalid."""


class OutputError(ConfigError, OSError):
    """A file or folder cannot be written where the user asked (still an ``OSError`` for old handlers)."""


class DataError(SuiteError):
    """A dataset, image or mask cannot be used."""


class CompressionError(SuiteError):
    """Pruning or quantization cannot proceed."""


class ProfilingError(SuiteError):
    """A model cannot be counted, exported or timed."""


class RemoteProfilingError(ProfilingError):
    """The remote device cannot be reached, trusted or used."""


class SearchError(SuiteError):
    """An architecture search cannot start or continue."""
