"""The lab's servers: what each one runs, on which ports, and how to tell it is ready.

* ``kafka``:  one Kafka node in KRaft combined mode (broker + controller);
* ``hbase``:  HBase standalone (master, region server and ZooKeeper in one JVM);
* ``thrift``: the HBase Thrift (v1) server that happybase talks to;
* ``jupyter``: JupyterLab on ``notebooks/`` (started by ``labkit lab``, not by ``up``);
* ``api``: labkit's HTTP API for Grafana (``labkit api --background``);
* ``flink-jm``, ``flink-tm``: an optional standalone Flink cluster (``labkit up --flink-cluster``).

``labkit.services.processes`` starts and stops them.
"""

from __future__ import annotations

from labkit.errors import ServiceError
from labkit.services.kafka_hbase import HBaseMaster, HBaseThrift, Kafka
from labkit.services.service import Service
from labkit.services.tools import ApiServer, FlinkJobManager, FlinkTaskManager, JupyterLab

KAFKA = Kafka("kafka", "Kafka broker + KRaft controller", jars="kafka", main_class="kafka.Kafka")
HBASE = HBaseMaster("hbase", "HBase standalone: master, region server, ZooKeeper")
THRIFT = HBaseThrift("thrift", "HBase Thrift server (happybase)")
JUPYTER = JupyterLab("jupyter", "JupyterLab on notebooks/")
API = ApiServer("api", "labkit's HTTP API for Grafana (labkit.api)")

FLINK_JOBMANAGER = FlinkJobManager("flink-jm", "Flink JobManager (dashboard, job submission)")
FLINK_TASKMANAGER = FlinkTaskManager("flink-tm", "Flink TaskManager")

STACK: tuple[Service, ...] = (KAFKA, HBASE, THRIFT)
FLINK_CLUSTER: tuple[Service, ...] = (FLINK_JOBMANAGER, FLINK_TASKMANAGER)
ALL: tuple[Service, ...] = (*STACK, *FLINK_CLUSTER, JUPYTER, API)


def by_name(name: str) -> Service:
    for service in ALL:
        if service.name == name:
            return service
    raise ServiceError(f"No service called {name!r}; the services are: {names()}")


def names() -> str:
    return ", ".join(service.name for service in ALL)
