"""The error every weight reader raises for what the user gave (a file that is not what it
claims, weights of another model, a dictionary that does not fit): the CLI shows it as one
line (textrec.cli.USER_ERRORS)."""


class WeightsError(ValueError):
  """Weights that cannot be loaded as asked; the message names the file and the fix."""
