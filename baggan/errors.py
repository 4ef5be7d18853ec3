"""Errors a user can cause: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input (path, file format, value); printed as one line, exit 2."""


class ConfigError(UserError):
    """A configuration file or value is invalid; the message names the file and the key."""


class DataError(UserError):
    """A data file or record is invalid; the message names the file and the record."""


class TrainingDiverged(UserError):
    """A loss became NaN or Inf; the message names the loss and the iteration."""
