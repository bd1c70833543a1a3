"""Start, check and stop the lab's real servers as local processes: no Docker needed.

``service`` says what a server is (its command, ports and readiness probe), ``kafka_hbase``
and ``tools`` define the lab's servers, ``servers`` lists them; ``processes`` starts, watches
and stops them. Java and the jars they run from are ``labkit.jvm``'s.
"""

from labkit.errors import ServiceError
from labkit.services.processes import (
    Status,
    check_disk,
    check_ports_free,
    down,
    lab_processes,
    log_tail,
    reset,
    running_pid,
    serve,
    start,
    status,
    stop,
    up,
    wait_ready,
)
from labkit.services.servers import (
    ALL,
    API,
    FLINK_CLUSTER,
    FLINK_JOBMANAGER,
    FLINK_TASKMANAGER,
    HBASE,
    JUPYTER,
    KAFKA,
    STACK,
    THRIFT,
    by_name,
    names,
)
from labkit.services.service import Service, port_open
from labkit.services.tools import NOTEBOOKS_DIR

__all__ = [
    "ALL", "API", "FLINK_CLUSTER", "FLINK_JOBMANAGER", "FLINK_TASKMANAGER", "HBASE", "JUPYTER",
    "KAFKA", "NOTEBOOKS_DIR", "STACK", "THRIFT", "Service", "ServiceError", "Status", "by_name",
    "check_disk", "check_ports_free", "down", "lab_processes", "log_tail", "names", "port_open",
    "reset", "running_pid", "serve", "start", "status", "stop", "up", "wait_ready",
]  # fmt: skip
