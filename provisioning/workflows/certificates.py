"""Certificate rotation: every broker gets a new certificate from the cluster's CA, one broker at a time.

The request raises the spec's certificate generation; a broker whose certificate is of an older
generation gets a new one when it next starts (see the backends). So the rotation is a rolling restart
under the rolling restart's own safety rules (`rolling.roll_brokers`: never while it could stop acks=all
producers, each broker back in sync before the next, the active controller last), and leaders are
given back afterwards. Clients trust the CA, not a broker's certificate, so they notice nothing but a
reconnect. The CA itself is not rotated.
"""

from __future__ import annotations

from provisioning.workflows.base import Step, Workflow
from provisioning.workflows.rolling import ROLL_TIMEOUT_SECONDS, elect_preferred_leaders, restart_each

ROTATE_CERTIFICATES = Workflow(
    kind="rotate_certificates",
    steps=(
        Step(
            "restart_brokers",
            "Restart brokers one at a time with new certificates, the active controller last",
            restart_each,
            ROLL_TIMEOUT_SECONDS,
        ),
        Step("elect_leaders", "Give leadership back to the preferred replicas", elect_preferred_leaders),
    ),
)
