"""Every operation kind's workflow, by kind."""

from provisioning.workflows.base import Workflow
from provisioning.workflows.certificates import ROTATE_CERTIFICATES
from provisioning.workflows.lifecycle import DELETE, PROVISION
from provisioning.workflows.replacement import REPLACE_BROKER
from provisioning.workflows.rolling import RESTART, UPGRADE
from provisioning.workflows.scaling import SCALE

WORKFLOWS: dict[str, Workflow] = {
    workflow.kind: workflow
    for workflow in (PROVISION, DELETE, SCALE, RESTART, REPLACE_BROKER, UPGRADE, ROTATE_CERTIFICATES)
}

__all__ = ["WORKFLOWS", "Workflow"]
