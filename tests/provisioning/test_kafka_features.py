"""Which feature levels finalizing a release raises, checked against Kafka's own tool."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from provisioning import distribution
from provisioning.distribution import KafkaDistribution
from provisioning.kafka_admin import features
from provisioning.kafka_admin.features import (
    GROUP_VERSION,
    KRAFT_VERSION,
    METADATA_VERSION,
    SHARE_VERSION,
    UnknownReleaseError,
    levels_to_raise,
    release_feature_levels,
)


def test_a_release_raises_metadata_version_and_the_features_it_turns_on() -> None:
    finalized = {METADATA_VERSION: 30, GROUP_VERSION: 1, SHARE_VERSION: 1, KRAFT_VERSION: 0}

    raised = levels_to_raise("4.4.0", finalized)

    assert raised[METADATA_VERSION] == 33
    assert raised[SHARE_VERSION] == 2
    assert GROUP_VERSION not in raised, "already at the release's level"
    assert KRAFT_VERSION not in raised, "kraft.version is never raised by an upgrade (KAFKA-21426)"


def test_a_level_above_the_release_is_left_alone() -> None:
    on_4_3 = dict(release_feature_levels("4.3.2"))
    assert levels_to_raise("4.3.2", {**on_4_3, SHARE_VERSION: 2}) == {}
    assert levels_to_raise("4.2.2", {**on_4_3, METADATA_VERSION: 30}) == {}
    assert levels_to_raise("3.9.2", {METADATA_VERSION: 21}) == {}


def test_a_release_without_known_levels_is_refused_by_name() -> None:
    with pytest.raises(UnknownReleaseError, match=r"Kafka 9\.1\.0.*known: 3\.9, 4\.2"):
        release_feature_levels("9.1.0")


def test_every_supported_version_has_levels() -> None:
    for version in distribution.SUPPORTED_VERSIONS:
        assert release_feature_levels(version)[METADATA_VERSION] > 0


def version_mapping(home: str, version: str) -> dict[str, int]:
    """`kafka-features.sh version-mapping --release-version X` of a distribution, parsed."""
    output = subprocess.run(
        [
            f"{home}/bin/kafka-features.sh",
            "--bootstrap-server",
            "127.0.0.1:1",
            "version-mapping",
            "--release-version",
            features.release_line(version),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    levels = {}
    for line in output.splitlines():
        name, separator, value = line.partition("=")
        if separator and name.strip() and value.split()[0].isdigit():
            levels[name.strip()] = int(value.split()[0])
    return levels


@pytest.mark.slow
def test_levels_are_those_kafkas_own_tool_finalizes(
    kafka_distributions: Callable[[str], KafkaDistribution],
) -> None:
    # 3.9 has no version-mapping command; its default is metadata.version alone, checked on a real
    # 3.9 cluster by the upgrade test.
    checked = [v for v in distribution.SUPPORTED_VERSIONS if features.release_line(v) != "3.9"]
    assert checked
    for version in checked:
        tool = version_mapping(str(kafka_distributions(version).home), version)
        assert KRAFT_VERSION in tool and tool[METADATA_VERSION] > 0
        del tool[KRAFT_VERSION]
        assert dict(release_feature_levels(version)) == tool, version
