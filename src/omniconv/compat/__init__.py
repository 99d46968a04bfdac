"""Framework front-ends: each framework's names, defaults, initialisers, layouts and
error texts over :mod:`omniconv.nn` / :mod:`omniconv.functional` (never a second
implementation of the math)."""
