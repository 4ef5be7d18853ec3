"""Errors a user can cause through hfc (a bad option for this generator, a diverged run, a bad file).

hfc never imports baggan; the baggan CLI turns these into its one-line UserError messages.
"""


class HFCError(Exception):
    """A problem with the user's input or run; the message names the option, file or iteration."""


class Diverged(HFCError):
    """A training loss became NaN or Inf; the message names the loss and the iteration."""
