"""The topic config table against what Apache Kafka itself documents, and the messages it gives."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from provisioning import distribution
from provisioning.topic_configs import known_topic_configs, topic_config_errors


def documented_topic_configs(home: Path, java_home: Path) -> dict[str, tuple[str, str]]:
    """name -> (type, valid values) as the release's LogConfig documents its topic configs."""
    result = subprocess.run(
        [
            str(java_home / "bin" / "java"),
            "-cp",
            str(home / "libs" / "*"),
            "org.apache.kafka.storage.internals.log.LogConfig",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    documented = {}
    for name, body in re.findall(r'href="#topicconfigs_([^"]+)".*?</h4>(.*?)</li>', result.stdout, re.S):
        kind = re.search(r"<th>Type:</th><td>(.*?)</td>", body)
        valid = re.search(r"<th>Valid Values:</th><td>(.*?)</td>", body)
        assert kind is not None, name
        documented[name] = (kind.group(1), valid.group(1) if valid else "")
    return documented


@pytest.mark.slow
@pytest.mark.parametrize("version", settings.KAFKA_VERSIONS)
def test_the_table_is_what_each_release_documents(
    version: str, kafka_distributions: Callable[[str], distribution.KafkaDistribution], java_home: Path
) -> None:
    documented = documented_topic_configs(kafka_distributions(version).home, java_home)

    known = known_topic_configs(version)

    assert sorted(known) == sorted(documented)
    for name, key in known.items():
        kind, valid = documented[name]
        assert key.type == kind, name
        if key.valid is not None:
            assert key.valid == valid, name


@pytest.mark.parametrize(
    ("config", "version", "expected"),
    [
        ({"retention.ms": "86400000", "cleanup.policy": "compact,delete"}, "4.4.0", {}),
        ({"retention.ms": "-1", "min.cleanable.dirty.ratio": "0.5", "preallocate": "TRUE"}, "4.4.0", {}),
        ({"retention.ms": None}, "4.4.0", {}),
        ({"retention.msx": "1"}, "4.4.0", {"retention.msx": "did you mean 'retention.ms'?"}),
        ({"message.format.version": "3.0"}, "4.4.0", {"message.format.version": "not a topic config"}),
        ({"message.format.version": "3.0-IV1"}, "3.9.2", {}),
        ({"retention.ms": "1 day"}, "4.4.0", {"retention.ms": "whole number of at least -1"}),
        ({"retention.ms": "-5"}, "4.4.0", {"retention.ms": "at least -1"}),
        ({"segment.bytes": "1024"}, "4.4.0", {"segment.bytes": "at least 1048576"}),
        ({"segment.bytes": "1024"}, "3.9.2", {}),
        ({"max.message.bytes": str(2**31)}, "4.4.0", {"max.message.bytes": "whole number"}),
        ({"compression.gzip.level": "-1"}, "4.4.0", {}),
        ({"compression.gzip.level": "0"}, "4.4.0", {"compression.gzip.level": "from 1 to 9, or -1"}),
        ({"cleanup.policy": "compact,forever"}, "4.4.0", {"cleanup.policy": "'forever' is not one of"}),
        ({"compression.type": "brotli"}, "4.4.0", {"compression.type": "must be one of uncompressed"}),
        ({"min.cleanable.dirty.ratio": "1.5"}, "4.4.0", {"min.cleanable.dirty.ratio": "from 0 to 1"}),
        ({"min.cleanable.dirty.ratio": "nan"}, "4.4.0", {"min.cleanable.dirty.ratio": "finite number"}),
        ({"preallocate": "yes"}, "4.4.0", {"preallocate": "true or false"}),
        ({"retention.ms": "1\nmin.insync.replicas=1"}, "4.4.0", {"retention.ms": "line break"}),
        (
            {"leader.replication.throttled.replicas": "*"},
            "4.4.0",
            {"leader.replication.throttled.replicas": "cannot be set"},
        ),
    ],
)
def test_config_errors(config: dict, version: str, expected: dict[str, str]) -> None:
    errors = topic_config_errors(config, version)

    assert sorted(errors) == sorted(expected)
    for key, fragment in expected.items():
        assert fragment in errors[key], errors[key]
