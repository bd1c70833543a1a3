"""Grafana beside the notebooks: the provisioned dashboard as code, and a preview drawn from
its own queries, with or without Docker.

* ``build``: the dashboard, built from the sensor catalogue with Grafana's Foundation SDK
  (``labkit grafana-dashboard`` writes ``grafana/provisioning/dashboards/iotlab.json``);
  ``simpod`` is the SDK's query type for the simPod JSON datasource.
* ``sizing`` and ``queries``: the requests Grafana sends for that dashboard (range,
  ``maxDataPoints`` from each panel's width, payloads, annotation queries).
* ``preview``: those requests sent to the lab's API (``collect``), and ``draw``: the answers
  drawn in the dashboard's grid (``labkit dashboard --png FILE``). Not Grafana: a preview
  drawn from the dashboard's queries.
* ``compare``: each panel beside the notebook's own computation of its data, from HBase or
  the oracle, with the largest difference and its cause.
"""
