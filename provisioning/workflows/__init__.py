"""Every operation kind's workflow, by kind."""

from provisioning.workflows.base import Workflow
from provisioning.workflows.lifecycle import DELETE, PROVISION

WORKFLOWS: dict[str, Workflow] = {workflow.kind: workflow for workflow in (PROVISION, DELETE)}

__all__ = ["WORKFLOWS", "Workflow"]
