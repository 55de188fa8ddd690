"""The one exception the CLI turns into a one-line message (anything else is a bug and shows a traceback)."""


class DynVFXError(Exception):
    """A problem with the user's input or environment, explained in one line."""
