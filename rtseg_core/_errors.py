"""One root exception, so the CLI can print a clean message for anything the user can fix.

Messages name the file, field or host, the value received and, where there is one, the fix.

Each class carries the CLI's exit status (``exit_code``), the one place that decides it:
2 = the command line cannot work as given (a usage error: an option's value or combination, a
config file's fields, an output place that needs ``--overwrite`` or cannot be written; argparse's
own errors are 2 as well); 1 = the run failed (an input file missing, unreadable or damaged, the
data, the device unreachable or refusing, the training, the export, the search ...).
"""


class SuiteError(Exception):
    """Root of every error the user can act on; the CLI prints it as one line."""

    exit_code = 1  # the run failed


class ConfigError(SuiteError):
    """A model, search or run configuration is invalid."""

    exit_code = 2  # a usage error


class InputFileError(ConfigError):
    """An input file (checkpoint, ONNX graph, JSON file, study folder, SSH config or key) is missing,
    unreadable or damaged. The run failed on it (exit 1), though its path came from an option; it
    stays a ConfigError so that code catching that for a bad input still catches it."""

    exit_code = 1


class OutputError(ConfigError, OSError):
    """A file or folder cannot be written where the user asked (still an ``OSError`` for old handlers)."""


class DataError(SuiteError):
    """A dataset, image or mask cannot be used."""


class CompressionError(SuiteError):
    """Pruning or quantization cannot proceed."""


class CompressionOptionError(CompressionError):
    """A pruning or quantization spec (its options) cannot work as given: a usage error (exit 2)."""

    exit_code = 2


class ProfilingError(SuiteError):
    """A model cannot be counted, exported or timed."""


class RemoteProfilingError(ProfilingError):
    """The remote device cannot be reached, trusted or used."""


class SearchError(SuiteError):
    """An architecture search cannot start or continue."""


class SearchOptionError(SearchError):
    """A search option (``--storage`` ...) cannot work as given: a usage error (exit 2)."""

    exit_code = 2


class SettingsMismatchError(SearchOptionError):
    """A resumed run asks for other settings than its study, claim or earlier result was made with
    ("repeat the original options"): a usage error (exit 2), not a failure."""
