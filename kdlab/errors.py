"""The one error type users see for bad configs and inputs: its message is the whole story, no traceback needed."""


class ConfigError(ValueError):
    """A bad config value, path or file, found before long work starts."""
