"""Grafana beside the notebooks: the provisioned dashboard as code, and a preview drawn from
its own queries.

``build`` builds the dashboard from the sensor catalogue (Grafana's Foundation SDK);
``simpod`` is the SDK's query type for the simPod JSON datasource.
"""
