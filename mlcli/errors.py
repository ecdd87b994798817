"""User-facing errors and the exit codes the CLI maps them to.

Every failure a user can cause (a bad config, bad data, a bad checkpoint, a diverging loss, a full disk) is raised
as one of these, with a message that names the file, the field or row, what was expected and what was found. The
CLI prints the message on one line to stderr (`error: ...`) and exits with `exit_code`.
"""

from __future__ import annotations


class MlcliError(Exception):
    """Base of every user-facing error; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(MlcliError):
    """A config file or command-line option is invalid (exit 2)."""

    exit_code = 2


class DataError(MlcliError):
    """A dataset is missing, malformed or inconsistent (exit 3)."""

    exit_code = 3


class CheckpointError(MlcliError):
    """A checkpoint is invalid, corrupt or unsafe to load (exit 4)."""

    exit_code = 4


class DivergenceError(MlcliError):
    """The training loss became NaN or infinite (exit 5)."""

    exit_code = 5


class RunIOError(MlcliError):
    """Reading or writing a run directory failed: disk full, permission denied (exit 6)."""

    exit_code = 6


class RunInUseError(MlcliError):
    """Another live process holds the run directory's lock (exit 7)."""

    exit_code = 7


EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
