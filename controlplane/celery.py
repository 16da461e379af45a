"""The Celery application. Tasks live in each app's `tasks.py` and take ids, never model instances."""

import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

app = Celery("controlplane")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def release_database_connections(sender: Task | None = None, **kwargs: Any) -> None:
    """Around each task, hand the database connections back (to the process's pool, or closed
    without one) unless they are meant to persist: what Django does around each request. Celery's
    own clean-up would close the pool as well (see CELERY_DB_REUSE_MAX). Not for eager tasks, which
    run inside their caller's transaction."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
