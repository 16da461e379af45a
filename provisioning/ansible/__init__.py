"""Running the VM playbooks (`provisioning/playbooks/`) from Python: the generated inventory
(`inventory.py`), the Kafka release pushed to hosts (`release.py`) and ansible-runner (`runner.py`)."""
