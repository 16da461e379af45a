"""The feature levels (KIP-584, KIP-1022) a Kafka release finalizes, and what finalizing a cluster to a
release has to raise. Pure data and functions; the adapters send the requests.

`kafka-features.sh upgrade --release-version X` finalizes metadata.version at release X's level and
every other production feature at the level X gives a newly formatted cluster (Kafka's
`Feature.defaultLevel(metadataVersion)`): group.version, transaction.version and the others a release
turns on by default. `RELEASE_FEATURE_LEVELS` holds those levels per release line, as
`kafka-features.sh version-mapping --release-version X` prints them (a test compares the table with
the tool of every supported distribution that has the command; 3.9 has none and finalizes only
metadata.version by default). Two deliberate differences from the tool:

- kraft.version is never raised. The tool raises it with the rest (KAFKA-21426), which on a cluster
  formatted with a static quorum turns on dynamic quorum membership as a side effect of an upgrade;
  that is a step of its own.
- A feature already finalized above the release's level is left where it is: an upgrade never
  lowers a level (the tool would ask for the lower level and be refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from provisioning.kafka_config import parse_kafka_version

METADATA_VERSION = "metadata.version"
KRAFT_VERSION = "kraft.version"
GROUP_VERSION = "group.version"
TRANSACTION_VERSION = "transaction.version"
ELIGIBLE_LEADER_REPLICAS_VERSION = "eligible.leader.replicas.version"
SHARE_VERSION = "share.version"
STREAMS_VERSION = "streams.version"


# Release line -> feature -> level, kraft.version left out (see the module docstring).
RELEASE_FEATURE_LEVELS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "3.9": MappingProxyType({METADATA_VERSION: 21}),
        "4.2": MappingProxyType(
            {
                METADATA_VERSION: 29,
                TRANSACTION_VERSION: 2,
                GROUP_VERSION: 1,
                ELIGIBLE_LEADER_REPLICAS_VERSION: 1,
                SHARE_VERSION: 1,
                STREAMS_VERSION: 1,
            }
        ),
        "4.3": MappingProxyType(
            {
                METADATA_VERSION: 30,
                TRANSACTION_VERSION: 2,
                GROUP_VERSION: 1,
                ELIGIBLE_LEADER_REPLICAS_VERSION: 1,
                SHARE_VERSION: 1,
                STREAMS_VERSION: 1,
            }
        ),
        "4.4": MappingProxyType(
            {
                METADATA_VERSION: 33,
                TRANSACTION_VERSION: 2,
                GROUP_VERSION: 1,
                ELIGIBLE_LEADER_REPLICAS_VERSION: 1,
                SHARE_VERSION: 2,
                STREAMS_VERSION: 1,
            }
        ),
    }
)


class UnknownReleaseError(ValueError):
    """No feature levels are known for this release line."""


def release_line(version: str) -> str:
    """`4.4.0` -> `4.4`: feature levels change with minor releases only."""
    major, minor = parse_kafka_version(version)
    return f"{major}.{minor}"


def release_feature_levels(version: str) -> Mapping[str, int]:
    line = release_line(version)
    try:
        return RELEASE_FEATURE_LEVELS[line]
    except KeyError:
        known = ", ".join(sorted(RELEASE_FEATURE_LEVELS))
        raise UnknownReleaseError(
            f"no feature levels are known for Kafka {version} (release lines known: {known})"
        ) from None


def levels_to_raise(version: str, finalized: Mapping[str, int]) -> dict[str, int]:
    """The features finalizing a cluster to `version` raises, with their new levels.

    `finalized` maps each finalized feature to its level; a feature missing from it is at level 0,
    which is how Kafka reports a feature that was never turned on.
    """
    return {
        name: level
        for name, level in release_feature_levels(version).items()
        if name != KRAFT_VERSION and level > finalized.get(name, 0)
    }
