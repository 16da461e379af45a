"""The Celery application. Tasks live in each app's `tasks.py` and take ids, never model instances."""

import gc
import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

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


@worker_init.connect
@worker_process_init.connect
def freeze_startup_objects(**kwargs: Any) -> None:
    """Take everything a worker process holds once it is ready (Django, Celery, every app's modules:
    over a hundred thousand objects that live as long as the process) out of the garbage
    collector's generations. Otherwise the collections a task's allocations trigger scan them over
    and over: a cluster's collection cost about 15% more CPU. In the parent, before the pool forks,
    it also keeps those pages shared with the children instead of copied when the collector touches
    them."""
    gc.freeze()
