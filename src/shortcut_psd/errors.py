"""Exceptions that carry a message a person can act on.

Every error raised for bad input names the problem (the file, the config key, the model name) and the
fix. Scripts let these propagate: Snakemake prints the message and marks the job failed, leaving every
other output untouched.
"""


class ShortcutPSDError(Exception):
    """Base class: an error whose message names the problem and how to fix it."""


class ConfigError(ShortcutPSDError):
    """A config value is missing, of the wrong type, or inconsistent with another."""


class DataError(ShortcutPSDError):
    """An image, manifest or prepared data set is missing, unreadable or inconsistent."""


class ModelError(ShortcutPSDError):
    """A model name, init or checkpoint cannot be used."""


class TrainingError(ShortcutPSDError):
    """Training cannot go on (for example the loss became NaN or inf)."""
