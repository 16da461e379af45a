#!/usr/bin/python
# ruff: noqa: E402 -- Ansible modules carry their DOCUMENTATION strings before the imports.
"""Ansible module: is it safe to restart or remove a Kafka node, and is it back in sync?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_partitions
short_description: Safety checks of a rolling restart, an upgrade and a decommission
description:
  - Reads partition state with the node's own kafka-topics.sh (JAVA_HOME and the KAFKA_*_OPTS of the
    task's environment apply) and waits, up to a timeout, until the condition of C(check) holds;
    fails naming the partitions when it does not.
  - C(safe_to_restart) holds when no partition is under-replicated (so none is below
    min.insync.replicas for want of a replica) and the node is in the ISR of no partition exactly at
    min.insync.replicas (restarting it would stop acks=all producers there).
  - C(in_sync) holds when no partition is under-replicated (a restarted node is back in every ISR).
  - C(drained) holds when the node holds no replica at all.
options:
  kafka_home:
    description: The Kafka release whose tools are run.
    required: true
    type: path
  bootstrap_servers:
    description: Comma-separated host:port of the cluster's brokers.
    required: true
    type: str
  command_config:
    description:
      - Client configuration of the tools (C(--command-config)), for a cluster that authenticates
        its clients; empty for none.
    type: path
    default: ""
  node_id:
    description: The node restarted or removed.
    required: true
    type: int
  check:
    description: The condition to wait for.
    required: true
    type: str
    choices: [safe_to_restart, in_sync, drained]
  timeout:
    description: Seconds to wait for the condition.
    type: int
    default: 300
  interval:
    description: Seconds between two looks.
    type: int
    default: 5
author: Kafka Control Plane
"""

EXAMPLES = r"""
- name: Wait until node 3 may be restarted
  kafka_partitions:
    kafka_home: /opt/kafka/releases/4.4.0
    bootstrap_servers: 10.0.0.1:9092,10.0.0.2:9092
    node_id: 3
    check: safe_to_restart
"""

RETURN = r"""
partitions:
  description: The partitions that kept the condition from holding at the last look.
  returned: always
  type: list
  elements: str
"""

import os
import re
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

PARTITION_LINE = re.compile(
    r"Topic:\s*(?P<topic>\S+)\s+Partition:\s*(?P<partition>\d+)\s+Leader:\s*(?P<leader>\S+)\s+"
    r"Replicas:\s*(?P<replicas>[\d,]*)\s+Isr:\s*(?P<isr>[\d,]*)"
)


def _ids(text):
    return [int(part) for part in text.split(",") if part]


def describe(params, *flags):
    command = [
        os.path.join(params["kafka_home"], "bin", "kafka-topics.sh"),
        "--bootstrap-server",
        params["bootstrap_servers"],
        *(["--command-config", params["command_config"]] if params["command_config"] else []),
        "--describe",
        *flags,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"kafka-topics.sh exited with {result.returncode}")
    partitions = []
    for line in result.stdout.splitlines():
        match = PARTITION_LINE.search(line)
        if match:
            partitions.append(
                {
                    "name": f"{match['topic']}-{match['partition']}",
                    "replicas": _ids(match["replicas"]),
                    "isr": _ids(match["isr"]),
                }
            )
    return partitions


def blocking(params):
    """(what blocks, partition names): empty names when the condition holds."""
    node = params["node_id"]
    check = params["check"]
    if check == "drained":
        held = [p["name"] for p in describe(params) if node in p["replicas"]]
        return f"node {node} still holds replicas of", held
    under = [p["name"] for p in describe(params, "--under-replicated-partitions")]
    if check == "in_sync" or under:
        return "under-replicated partitions", under
    # Every ISR is complete now, so no partition can be under min.insync.replicas because of a
    # missing replica; what remains is whether this node's restart takes one to below it.
    at_min = [p["name"] for p in describe(params, "--at-min-isr-partitions") if node in p["isr"]]
    return f"partitions at min.insync.replicas with node {node} in their ISR", at_min


def main():
    module = AnsibleModule(
        argument_spec={
            "kafka_home": {"type": "path", "required": True},
            "bootstrap_servers": {"type": "str", "required": True},
            "command_config": {"type": "path", "default": ""},
            "node_id": {"type": "int", "required": True},
            "check": {"type": "str", "required": True, "choices": ["safe_to_restart", "in_sync", "drained"]},
            "timeout": {"type": "int", "default": 300},
            "interval": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )
    params = module.params
    deadline = time.monotonic() + params["timeout"]
    reason, names, error = "", [], None
    while True:
        try:
            reason, names = blocking(params)
            error = None
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            error = str(exc)
        if error is None and not names:
            module.exit_json(changed=False, partitions=[])
        if time.monotonic() + params["interval"] > deadline:
            break
        time.sleep(params["interval"])
    if error is not None:
        message = f"cannot read the cluster's partitions: {error}"
    else:
        shown = ", ".join(sorted(names)[:20]) + (" ..." if len(names) > 20 else "")
        message = f"{params['check']} not reached after {params['timeout']} s: {reason}: {shown}"
    module.fail_json(msg=message, partitions=sorted(names))


if __name__ == "__main__":
    main()
