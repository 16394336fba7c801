"""The errors textrec raises for what a user gave it.

The library raises these; only the command line (`textrec.cli`) turns them into one
`error: ...` line and an exit code. Each message is one line that names the file, field or
argument and says what is wrong and how to fix it, in the library's words (no CLI flags):
the CLI adds which flag carried the value.
"""
from __future__ import annotations


class TextrecError(Exception):
  """Base of every error textrec raises for a user's input (path, name, value, file)."""


class UsageError(TextrecError, ValueError):
  """A value the user chose that cannot work: an unknown model name, an option out of range,
  a combination that does not fit."""


class WeightsError(TextrecError, ValueError):
  """Weights that cannot be loaded as asked: a file that is not what it claims, weights of
  another model, a dictionary that does not fit the head."""


class InputError(TextrecError, ValueError):
  """An input (image, PDF, dataset line, request) that cannot be read as given."""


class MissingExtraError(TextrecError, ModuleNotFoundError):
  """An optional dependency is not installed; the message names the extra that brings it."""


class UnknownNameError(UsageError, KeyError):
  """A name (of a model, of official weights) that is not known; also a KeyError, for
  callers that look names up."""

  __str__ = Exception.__str__  # the message as written (KeyError's would quote it)
