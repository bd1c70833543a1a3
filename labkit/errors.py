"""The root of every error labkit raises on purpose.

Each layer has its own subclass next to the code that raises it (``SettingsError`` in
``labkit.config``, ``ServiceError`` in ``labkit.jvm`` and ``labkit.services``, ``DeliveryError``
in ``labkit.kafka``, ``ApiCallError`` in ``labkit.api.client``...). Their messages are written
for a student: what went wrong and what to do. The ``labkit`` command catches ``LabkitError``
and prints the message alone, without a traceback.
"""

from __future__ import annotations


class LabkitError(Exception):
    """An error whose message tells the user what went wrong and what to do about it."""


class ServiceError(LabkitError, RuntimeError):
    """A service (a server, Java, Maven, the disk) could not be prepared, started or stopped."""
