"""A test backend: the real `local` backend, except that its first `provision` of a cluster blocks
after the brokers have started, until the worker running it is killed.

That makes "a worker dies in the middle of a step whose effect already happened" deterministic.
Workers get it with CONTROLPLANE_EXTRA_BACKENDS="blocking-local=tests.operations.blocking_backend.
blocking_local_backend"; it tells the test it is blocked by creating `<cluster id>.blocked` in the
directory named by BLOCKING_BACKEND_DIR.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings

from provisioning.backends.base import ClusterDescription, ClusterSpec
from provisioning.backends.local import LocalBackend

NAME = "blocking-local"
FACTORY = "tests.operations.blocking_backend.blocking_local_backend"


class BlockingLocalBackend(LocalBackend):
    name = NAME

    def provision(self, spec: ClusterSpec) -> ClusterDescription:
        description = super().provision(spec)
        marker = Path(os.environ["BLOCKING_BACKEND_DIR"]) / f"{spec.cluster_id}.blocked"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            while True:  # until the test kills this worker
                time.sleep(0.1)
        return description


def blocking_local_backend() -> BlockingLocalBackend:
    return BlockingLocalBackend(Path(settings.LOCAL_BACKEND_STATE_DIR))
