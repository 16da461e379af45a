"""Housekeeping of the targets' files on this machine."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task
from django.conf import settings

from provisioning.ansible.runner import prune_runs


@shared_task(ignore_result=True)
def prune_vm_runs() -> int:
    """Remove the playbook runs (inventory, events, status) of operations untouched for longer than
    VM_RUN_RETENTION_SECONDS."""
    removed = prune_runs(Path(settings.VM_RUNS_DIR), older_than_seconds=settings.VM_RUN_RETENTION_SECONDS)
    return len(removed)
