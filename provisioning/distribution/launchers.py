"""The `bin/` launchers and `config/` logging of a distribution assembled from Maven Central.

The official tarball ships Kafka's own scripts; jars from Maven Central come without any. What is
written here mirrors the scripts' contract, so every caller can treat both layouts alike: the same
script names, `KAFKA_HEAP_OPTS`, `KAFKA_JVM_PERFORMANCE_OPTS`, `KAFKA_OPTS`, `KAFKA_LOG4J_OPTS`,
`LOG_DIR` and `JAVA_HOME`. A tool's main class moved between releases (3.9 keeps some in the Scala
core), so each script names candidates and the first class present in `libs/` wins.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

# Script name -> main class candidates, newest location first.
TOOLS: dict[str, tuple[str, ...]] = {
    "kafka-server-start.sh": ("kafka.Kafka",),
    "kafka-storage.sh": ("kafka.tools.StorageTool",),
    "kafka-features.sh": ("org.apache.kafka.tools.FeatureCommand",),
    "kafka-metadata-quorum.sh": ("org.apache.kafka.tools.MetadataQuorumCommand",),
    "kafka-topics.sh": ("org.apache.kafka.tools.TopicCommand",),
    "kafka-configs.sh": ("org.apache.kafka.tools.ConfigCommand", "kafka.admin.ConfigCommand"),
    "kafka-reassign-partitions.sh": ("org.apache.kafka.tools.reassign.ReassignPartitionsCommand",),
    "kafka-consumer-groups.sh": ("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",),
    "kafka-console-producer.sh": ("org.apache.kafka.tools.ConsoleProducer", "kafka.tools.ConsoleProducer"),
    "kafka-console-consumer.sh": ("org.apache.kafka.tools.consumer.ConsoleConsumer",),
    "kafka-producer-perf-test.sh": ("org.apache.kafka.tools.ProducerPerformance",),
    "kafka-log-dirs.sh": ("org.apache.kafka.tools.LogDirsCommand",),
    "kafka-cluster.sh": ("org.apache.kafka.tools.ClusterTool", "kafka.tools.ClusterTool"),
}
BROKER_SCRIPT = "kafka-server-start.sh"

RUN_CLASS = """#!/bin/sh
# Runs a Java class of this Apache Kafka distribution (libs/ assembled from Maven Central).
# Honours the variables of Kafka's own kafka-run-class.sh: JAVA_HOME, KAFKA_HEAP_OPTS,
# KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_OPTS, KAFKA_LOG4J_OPTS, LOG_DIR.
base_dir=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "$JAVA_HOME" ]; then java="$JAVA_HOME/bin/java"; else java=java; fi
: "${{LOG_DIR:=$base_dir/logs}}"
: "${{KAFKA_HEAP_OPTS:=-Xmx256M}}"
: "${{KAFKA_JVM_PERFORMANCE_OPTS:=-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}}"
: "${{KAFKA_LOG4J_OPTS:={tools_logging}}}"
# shellcheck disable=SC2086 # the option variables hold several words on purpose
exec "$java" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_OPTS $KAFKA_LOG4J_OPTS \\
  -Dkafka.logs.dir="$LOG_DIR" -cp "$base_dir/libs/*" "$@"
"""

TOOL = """#!/bin/sh
exec "$(dirname "$0")/kafka-run-class.sh" {main_class} "$@"
"""

BROKER = """#!/bin/sh
# Starts a broker or controller: kafka-server-start.sh server.properties
base_dir=$(cd "$(dirname "$0")/.." && pwd)
: "${{KAFKA_HEAP_OPTS:=-Xmx1G -Xms1G}}"
: "${{KAFKA_LOG4J_OPTS:={broker_logging}}}"
export KAFKA_HEAP_OPTS KAFKA_LOG4J_OPTS
exec "$base_dir/bin/kafka-run-class.sh" {main_class} "$@"
"""

# Kafka 4.x logs through Log4j 2; 3.x through reload4j (Log4j 1 syntax). Brokers log to standard
# output (the process supervisor keeps it) in Kafka's own line format; the per-client configuration
# dumps ("... values:" at INFO, hundreds of lines per start) are left out so the log stays readable.
LOG4J2_BROKER = """status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""

LOG4J2_TOOLS = """status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
"""

LOG4J1_BROKER = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.kafka.request.logger=WARN
"""

LOG4J1_TOOLS = """log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def _classes_in(libs: Path) -> set[str]:
    """Class names present in the Kafka jars of `libs/` (only those can hold a tool's main class)."""
    names: set[str] = set()
    for jar in sorted(libs.glob("kafka*.jar")):
        with zipfile.ZipFile(jar) as archive:
            names.update(
                entry[: -len(".class")].replace("/", ".")
                for entry in archive.namelist()
                if entry.endswith(".class") and "$" not in entry
            )
    return names


def uses_log4j2(libs: Path) -> bool:
    return any(libs.glob("log4j-core-*.jar"))


def write_launchers(home: Path) -> None:
    """Write `bin/` and `config/` for the jars in `home/libs`."""
    libs = home / "libs"
    config = home / "config"
    bin_dir = home / "bin"
    config.mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(parents=True, exist_ok=True)
    if uses_log4j2(libs):
        (config / "log4j2.properties").write_text(LOG4J2_BROKER)
        (config / "tools-log4j2.properties").write_text(LOG4J2_TOOLS)
        broker_logging = "-Dlog4j2.configurationFile=$base_dir/config/log4j2.properties"
        tools_logging = "-Dlog4j2.configurationFile=$base_dir/config/tools-log4j2.properties"
    else:
        (config / "log4j.properties").write_text(LOG4J1_BROKER)
        (config / "tools-log4j.properties").write_text(LOG4J1_TOOLS)
        broker_logging = "-Dlog4j.configuration=file:$base_dir/config/log4j.properties"
        tools_logging = "-Dlog4j.configuration=file:$base_dir/config/tools-log4j.properties"

    scripts = {"kafka-run-class.sh": RUN_CLASS.format(tools_logging=tools_logging)}
    available = _classes_in(libs)
    for script, candidates in TOOLS.items():
        main_class = next((c for c in candidates if c in available), None)
        if main_class is None:
            continue  # this release has no such tool
        template = BROKER if script == BROKER_SCRIPT else TOOL
        scripts[script] = template.format(main_class=main_class, broker_logging=broker_logging)
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
