"""The error types every vaultflow command speaks.

A command fails in one of two ways, and the CLI maps each to its exit code:

* ``InputError`` (exit 2): the user gave something wrong (a malformed catalog,
  an unknown template name, a bad flag). Nothing was changed.
* ``OperationError`` (exit 1): the input was fine but the platform said no
  (Vault sealed or unreachable, a push rejected, a target that never converged).

Both carry one human sentence that says what and where; the CLI prints it
without a traceback.
"""

from __future__ import annotations


class VaultflowError(Exception):
    """Base class: a failure with a message meant for the operator."""

    exit_code: int = 1


class InputError(VaultflowError):
    """Bad input: nothing was changed."""

    exit_code = 2


class OperationError(VaultflowError):
    """A remote system refused or failed."""

    exit_code = 1
