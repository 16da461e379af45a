"""Benchmarks of the control plane, run with `make bench` or one at a time with `python -m bench.<name>`."""
