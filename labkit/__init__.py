"""labkit: the shared package behind the iotlab notebooks.

The modules follow the data's path: ``sensors`` -> ``kafka`` (broker) -> ``flink`` (stream)
-> ``hbase`` (storage) -> ``api`` (serving); ``services`` starts the servers, ``config`` holds
the settings and ``cli`` is the ``labkit`` command.
"""

__version__ = "0.1.0"
