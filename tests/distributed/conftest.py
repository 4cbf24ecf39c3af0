"""A real dask cluster for the distributed-fit tests: a LocalCluster of three single-threaded
worker processes on 127.0.0.1 (no dashboard), started once per module and stopped after it.

The scheduler lives in this process, so a test can change how many worker deaths it allows a
task (``tests.distributed._faults.set_allowed_failures``).
"""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster

N_WORKERS = 3


@pytest.fixture(scope="module")
def dask_client():
    cluster = LocalCluster(
        n_workers=N_WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        silence_logs=50,
    )
    client = Client(cluster)
    try:
        client.wait_for_workers(N_WORKERS, timeout=120)
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture()
def workers(dask_client):
    """The cluster's worker addresses, sorted, once all of them are up."""
    dask_client.wait_for_workers(N_WORKERS, timeout=120)
    return sorted(dask_client.scheduler_info()["workers"])
